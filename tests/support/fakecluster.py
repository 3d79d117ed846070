#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A small IPFS Cluster REST API server for tests that records every request and checks it
against the documented contract (ipfs-cluster api/rest, v1):

    POST   /pins/{cid}?replication-min=N&replication-max=M&name=NAME   200, the Pin object
    GET    /pins/{cid}     200, GlobalPinInfo {"cid", "name", "peer_map": {peer: PinInfo}}
    DELETE /pins/{cid}     200, the Pin object; 404 {"code", "message"} for an unknown pin
    auth                   HTTP basic (basic_auth_credentials); 401 otherwise

    fc = FakeCluster(user="admin", password="pw", peers=3).start()   # 127.0.0.1:0; fc.url
    ...
    fc.stop()

A pin is allocated to replication-max peers (all when 0) and reported "pin_queued", then
"pinning", then "pinned" on its peers as polls arrive (steps polls each); the other peers say
"remote". Faults: fail_posts (the next N pins answer 500), hang_polls (GET /pins/{cid} waits
that many seconds before answering), violations (requests that break the contract).
"""
import base64
import re
import threading
import time
import urllib.parse

from quiethttp import QuietHandler, reply_json, serve

CID_RE = re.compile(r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{50,})$")
PIN_QUERY = {"replication-min", "replication-max", "name", "mode", "user-allocations",
             "shard-size", "expire-at", "meta", "origins", "pin-update", "local"}


class FakeCluster:
    def __init__(self, user, password, peers=3, steps=1):
        self.user = user
        self.password = password
        self.peers = ["12D3KooWPeer%d" % i for i in range(peers)]
        self.steps = steps
        self.lock = threading.Lock()
        self.requests = []  # (method, path, query dict, Authorization header)
        self.violations = []
        self.pins = {}  # cid -> dict(name, min, max, polls, allocations)
        self.deleted = []
        self.fail_posts = 0
        self.hang_polls = 0.0
        self.server = None
        self.url = None
        self.thread = None

    def _pin_object(self, cid):
        p = self.pins[cid]
        return {"cid": cid, "name": p["name"], "type": 2, "allocations": p["allocations"],
                "max_depth": -1, "reference": None, "replication_factor_min": p["min"],
                "replication_factor_max": p["max"], "mode": "recursive", "metadata": None,
                "user_allocations": None, "origins": []}

    def _status(self, cid):
        p = self.pins[cid]
        p["polls"] += 1
        step = min(p["polls"] // self.steps, 2)
        state = ["pin_queued", "pinning", "pinned"][step]
        peer_map = {}
        for peer in self.peers:
            st = state if peer in p["allocations"] else "remote"
            peer_map[peer] = {"cid": cid, "name": p["name"], "peer": peer,
                              "ipfs_peer_id": "12D3KooWIpfs" + peer[-1], "status": st,
                              "timestamp": "2026-12-05T07:00:00Z", "error": "",
                              "attempt_count": 0, "priority_pin": False}
        return {"cid": cid, "name": p["name"], "allocations": p["allocations"], "origins": [],
                "created": "2026-12-05T07:00:00Z", "metadata": None, "peer_map": peer_map}

    def requests_for(self, cid):
        with self.lock:
            return [r for r in self.requests if r[1] == "/pins/" + cid]

    def start(self):
        fc = self
        want_auth = "Basic " + base64.b64encode(
            ("%s:%s" % (self.user, self.password)).encode()).decode()

        class Handler(QuietHandler):
            def _reply(self, code, obj):
                reply_json(self, code, obj)

            def _error(self, code, message):
                self._reply(code, {"code": code, "message": message})

            def _begin(self, method):
                u = urllib.parse.urlsplit(self.path)
                raw = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                query = {k: v[0] for k, v in raw.items()}
                auth = self.headers.get("Authorization")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with fc.lock:
                    fc.requests.append((method, u.path, query, auth))
                    if any(len(v) != 1 for v in raw.values()):
                        fc.violations.append("repeated query parameter: " + self.path)
                m = re.match(r"^/pins/([^/]+)$", u.path)
                if not m or not CID_RE.match(m.group(1)):
                    with fc.lock:
                        fc.violations.append("%s %s: not /pins/{cid}" % (method, self.path))
                    self._error(404, "not found")
                    return None, None
                if auth != want_auth:
                    with fc.lock:
                        fc.violations.append("%s %s: Authorization %r" % (method, self.path,
                                                                           auth))
                    self._error(401, "Unauthorized")
                    return None, None
                return m.group(1), query

            def do_POST(self):
                cid, q = self._begin("POST")
                if cid is None:
                    return
                bad = set(q) - PIN_QUERY
                for k in ("replication-min", "replication-max"):
                    if k in q and not re.match(r"^-?[0-9]+$", q[k]):
                        bad.add(k)
                if bad:
                    with fc.lock:
                        fc.violations.append("POST %s: bad parameters %s" % (self.path, bad))
                    self._error(400, "bad parameters")
                    return
                with fc.lock:
                    if fc.fail_posts > 0:
                        fc.fail_posts -= 1
                        fail = True
                    else:
                        fail = False
                        rmax = int(q.get("replication-max", "0"))
                        n = len(fc.peers) if rmax <= 0 else min(rmax, len(fc.peers))
                        old = fc.pins.get(cid)
                        fc.pins[cid] = {"name": q.get("name", ""),
                                        "min": int(q.get("replication-min", "0")),
                                        "max": rmax, "polls": old["polls"] if old else 0,
                                        "allocations": fc.peers[:n]}
                        obj = fc._pin_object(cid)
                if fail:
                    self._error(500, "error pinning: consensus not ready")
                    return
                self._reply(200, obj)

            def do_GET(self):
                cid, q = self._begin("GET")
                if cid is None:
                    return
                if set(q) - {"local"}:
                    with fc.lock:
                        fc.violations.append("GET %s: bad parameters" % self.path)
                if fc.hang_polls:
                    time.sleep(fc.hang_polls)
                with fc.lock:
                    obj = fc._status(cid) if cid in fc.pins else None
                if obj is None:
                    self._error(404, "cid not found")
                    return
                self._reply(200, obj)

            def do_DELETE(self):
                cid, q = self._begin("DELETE")
                if cid is None:
                    return
                with fc.lock:
                    if cid not in fc.pins:
                        obj = None
                    else:
                        obj = fc._pin_object(cid)
                        del fc.pins[cid]
                        fc.deleted.append(cid)
                if obj is None:
                    self._error(404, "uncommitted to state: cid not found")
                    return
                self._reply(200, obj)

        self.server, self.url, self.thread = serve(Handler)
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)
            self.server = None
