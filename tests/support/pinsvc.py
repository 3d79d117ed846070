#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A small IPFS Pinning Service API server for tests that pins on a real node.

    svc = PinService(node, token="s3cret").start()   # binds 127.0.0.1:0; svc.url
    ...
    svc.stop()

POST /pins {"cid": ...} (Bearer token required, else 401) answers 202 with status "queued";
a worker thread then runs the node's pin/add (status "pinning" meanwhile) and ends in
"pinned", or "failed" if the node refused or timed out. GET /pins/{requestid} answers the
current PinStatus. GET /pins?cid=..&name=..&status=..&limit=.. lists the matching pins
(PinResults; exact name match, default status "pinned"); DELETE /pins/{requestid} removes
one (202; the node's pin is left alone). Counters: created, polls, unauthorized, listed,
deleted; pins[requestid].
"""
import http.server
import json
import threading
import urllib.parse
import uuid

from quiethttp import QuietHandler, reply_json


class PinService:
    def __init__(self, node, token, pin_timeout=60, min_steps=2):
        self.node = node
        self.token = token
        self.pin_timeout = pin_timeout
        self.min_steps = min_steps  # polls answered "queued" before pinning starts
        self.lock = threading.Lock()
        self.pins = {}  # requestid -> dict(cid, status, polls)
        self.created = 0
        self.polls = 0
        self.unauthorized = 0
        self.listed = 0
        self.deleted = 0
        self.server = None
        self.url = None
        self.threads = []

    def _status(self, rid):
        with self.lock:
            return self._status_locked(rid)

    def _status_locked(self, rid):
        p = self.pins[rid]
        return {"requestid": rid, "status": p["status"], "created": "2024-01-01T00:00:00Z",
                "pin": {"cid": p["cid"], "name": p["name"]}, "delegates": []}

    def _pin(self, rid, cid):
        with self.lock:
            if rid not in self.pins:
                return
            self.pins[rid]["status"] = "pinning"
        try:
            self.node.rpc("pin/add", [("arg", cid), ("recursive", "true")],
                          timeout=self.pin_timeout)
            status = "pinned"
        except Exception:  # any refusal or timeout of the node is a failed pin
            status = "failed"
        with self.lock:
            if rid in self.pins:  # (deleted meanwhile)
                self.pins[rid]["status"] = status

    def start(self):
        svc = self

        class Handler(QuietHandler):
            def _reply(self, code, obj):
                reply_json(self, code, obj)

            def _authorized(self):
                if self.headers.get("Authorization") == "Bearer " + svc.token:
                    return True
                with svc.lock:
                    svc.unauthorized += 1
                self._reply(401, {"error": {"reason": "UNAUTHORIZED"}})
                return False

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not self._authorized():
                    return
                if self.path.rstrip("/") != "/pins":
                    self._reply(404, {"error": {"reason": "NOT_FOUND"}})
                    return
                try:
                    req = json.loads(body)
                    cid = req["cid"]
                except (ValueError, KeyError):
                    self._reply(400, {"error": {"reason": "BAD_REQUEST"}})
                    return
                rid = uuid.uuid4().hex
                with svc.lock:
                    svc.created += 1
                    svc.pins[rid] = {"cid": cid, "name": req.get("name", ""),
                                     "status": "queued", "polls": 0}
                self._reply(202, svc._status(rid))

            def _list(self, query):
                q = urllib.parse.parse_qs(query)
                cids = set(",".join(q.get("cid", [])).split(",")) - {""}
                names = q.get("name", [])
                statuses = set(",".join(q.get("status", ["pinned"])).split(","))
                limit = int(q.get("limit", ["10"])[0])
                with svc.lock:
                    svc.listed += 1
                    rids = [rid for rid, p in svc.pins.items()
                            if (not cids or p["cid"] in cids)
                            and (not names or p["name"] == names[0])
                            and p["status"] in statuses]
                    results = [svc._status_locked(rid) for rid in rids[:limit]]
                self._reply(200, {"count": len(rids), "results": results})

            def do_DELETE(self):
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")
                with svc.lock:
                    found = len(parts) == 2 and parts[0] == "pins" and parts[1] in svc.pins
                    if found:
                        del svc.pins[parts[1]]
                        svc.deleted += 1
                if not found:
                    self._reply(404, {"error": {"reason": "NOT_FOUND"}})
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                if not self._authorized():
                    return
                u = urllib.parse.urlsplit(self.path)
                if u.path.rstrip("/") == "/pins":
                    self._list(u.query)
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "pins" or parts[1] not in svc.pins:
                    self._reply(404, {"error": {"reason": "NOT_FOUND"}})
                    return
                rid = parts[1]
                start = False
                with svc.lock:
                    svc.polls += 1
                    p = svc.pins[rid]
                    p["polls"] += 1
                    if p["status"] == "queued" and p["polls"] >= svc.min_steps:
                        start = True
                if start:
                    t = threading.Thread(target=svc._pin, args=(rid, p["cid"]), daemon=True)
                    svc.threads.append(t)
                    t.start()
                self._reply(200, svc._status(rid))

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for t in self.threads:
            t.join(timeout=self.pin_timeout + 5)
