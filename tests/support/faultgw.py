#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A fault-injecting trustless gateway for tests, fed with blocks from a real node.

    gw = FaultGateway(source=node)          # blocks come from node's block/get (memoised)
    gw.start()                               # binds 127.0.0.1:0; gw.url
    gw.set_fault("corrupt", count=10)        # the next 10 block answers have a flipped byte
    ...
    gw.stop()

Faults (per request, for the next `count` requests, or with probability `p`): latency (ms
before the answer starts), bandwidth (bytes/s, or (bytes/s, piece): the body goes out in
pieces of that size, 64 KiB by default, each followed by the pause the rate asks for), reset
(close the connection after N body bytes), status (500/503/429 with Retry-After), hang (accept
and never answer until released), corrupt (flip a byte), content_type (wrong type: arg, or
text/plain), truncate (send fewer bytes than Content-Length), swap (another valid block this
gateway served, in place of the one asked for), html (200 with an HTML error page as
text/html; arg: a status to send it with instead, e.g. 502).
Also answers POST /api/v0/block/get?arg= and /api/v0/version like a Kubo RPC node. With
passthrough=True every other POST /api/v0/... (add, pin/add, block/put...) is forwarded to
the source node as it came, so the gateway can stand in for the node as an RPC node of a
mount that also writes; a source that does not answer closes the client's connection.
Per CID: `missing` (a set) is answered 404 without asking the source (a block no node
has: js-ipfs would search for it until the timeout); `delays` ({cid: seconds}) holds that
block's answer back.
Counters: served[cid] (blocks answered), requests, max_in_flight (block requests answered
at once, at most); order (the CIDs asked for, in the order
the requests came; not kept with keep_order=False); injected[kind] (answers that carried
each fault); forwarded (requests passed through).
"""
import http.client
import http.server
import random
import socket
import threading
import time
import urllib.parse

from quiethttp import QuietHandler


class FaultGateway:
    def __init__(self, source=None, blocks=None, passthrough=False, keep_order=True):
        self.source = source
        self.passthrough = passthrough
        self.keep_order = keep_order
        self.injected = {}
        self.forwarded = 0
        self.blocks = dict(blocks or {})
        self.missing = set()
        self.delays = {}
        self.lock = threading.Lock()
        self.faults = []  # dicts: kind, count, p, arg
        self.served = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # block requests being answered at once, at most
        self.order = []
        self.corrupted = 0
        self.release = threading.Event()
        self.server = None
        self.thread = None
        self.url = None

    # -- control ------------------------------------------------------------------------------
    def set_fault(self, kind, count=None, p=None, arg=None):
        with self.lock:
            self.faults.append({"kind": kind, "count": count, "p": p, "arg": arg})

    def clear_faults(self):
        with self.lock:
            self.faults = []
        self.release.set()

    def _pick_faults(self):
        out = []
        with self.lock:
            for f in self.faults:
                if f["count"] is not None:
                    if f["count"] <= 0:
                        continue
                    f["count"] -= 1
                    out.append(f)
                elif f["p"] is not None:
                    if random.random() < f["p"]:
                        out.append(f)
                else:
                    out.append(f)
        return out

    def _block(self, cid):
        with self.lock:
            if cid in self.missing:
                return None
            if cid in self.blocks:
                return self.blocks[cid]
        if self.source is None:
            return None
        try:
            data = self.source.block_get(cid, timeout=30)
        except Exception:
            return None
        with self.lock:
            self.blocks[cid] = data
        return data

    # -- server -------------------------------------------------------------------------------
    def start(self):
        gw = self

        class Handler(QuietHandler):
            def _answer(self, cid, rpc):
                with gw.lock:
                    gw.in_flight += 1
                    gw.max_in_flight = max(gw.max_in_flight, gw.in_flight)
                try:
                    self._answer_block(cid, rpc)
                finally:
                    with gw.lock:
                        gw.in_flight -= 1

            def _answer_block(self, cid, rpc):
                with gw.lock:
                    gw.requests += 1
                    if gw.keep_order:
                        gw.order.append(cid)
                faults = gw._pick_faults()
                kinds = {f["kind"]: f for f in faults}
                if kinds:
                    with gw.lock:
                        for k in kinds:
                            gw.injected[k] = gw.injected.get(k, 0) + 1
                if "html" in kinds:
                    page = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                            b"<body><h1>Bad Gateway</h1><p>upstream error</p></body></html>\n")
                    self.send_response(kinds["html"]["arg"] or 200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if "hang" in kinds:
                    gw.release.wait()
                    self.close_connection = True
                    return
                if "latency" in kinds:
                    time.sleep(kinds["latency"]["arg"] / 1000.0)
                with gw.lock:
                    delay = gw.delays.get(cid, 0)
                if delay:
                    time.sleep(delay)
                if "status" in kinds:
                    code = kinds["status"]["arg"] or 503
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if cid == "bafkqaaa":
                    data = b""
                else:
                    data = gw._block(cid)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if "swap" in kinds:
                    with gw.lock:
                        other = next((b for c, b in gw.blocks.items() if c != cid and b != data
                                      and b), None)
                    if other is not None:
                        data = other
                if "corrupt" in kinds and data:
                    i = random.randrange(len(data))
                    data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
                    with gw.lock:
                        gw.corrupted += 1
                ctype = "application/vnd.ipld.raw"
                if "content_type" in kinds:
                    ctype = kinds["content_type"]["arg"] or "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                limit = len(data)
                if "reset" in kinds:
                    limit = min(limit, kinds["reset"]["arg"] or 0)
                if "truncate" in kinds:
                    limit = max(0, len(data) - 1)
                rate, piece = None, 65536
                if "bandwidth" in kinds:
                    rate = kinds["bandwidth"]["arg"]
                    if isinstance(rate, tuple):
                        rate, piece = rate
                sent = 0
                while sent < limit:
                    n = min(piece, limit - sent)
                    self.wfile.write(data[sent:sent + n])
                    sent += n
                    if rate:
                        time.sleep(n / rate)
                if limit < len(data):
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                with gw.lock:
                    gw.served[cid] = gw.served.get(cid, 0) + 1

            def _forward(self, body):
                with gw.lock:
                    gw.forwarded += 1
                src = urllib.parse.urlsplit(gw.source.api_url)
                hdrs = {k: self.headers[k] for k in ("Content-Type", "Authorization")
                        if self.headers.get(k)}
                try:
                    c = http.client.HTTPConnection(src.hostname, src.port, timeout=120)
                    c.request("POST", self.path, body=body, headers=hdrs)
                    r = c.getresponse()
                    answer = r.read()
                    c.close()
                except (OSError, http.client.HTTPException):
                    self.close_connection = True  # a dead node, as seen through a proxy
                    return
                self.send_response(r.status)
                self.send_header("Content-Type", r.getheader("Content-Type") or "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                if not u.path.startswith("/ipfs/"):
                    self.send_error(404)
                    return
                self._answer(u.path[len("/ipfs/"):].strip("/"), rpc=False)

            def do_POST(self):
                u = urllib.parse.urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if (gw.passthrough and u.path.startswith("/api/v0/")
                        and u.path not in ("/api/v0/version", "/api/v0/block/get")):
                    self._forward(body)
                    return
                if u.path == "/api/v0/version":
                    body = b'{"Version":"faultgw"}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if u.path == "/api/v0/block/get":
                    arg = urllib.parse.parse_qs(u.query).get("arg", [""])[0]
                    self._answer(arg, rpc=True)
                    return
                self.send_error(404)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # clients that hang up mid-answer (failover, shutdown) are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
