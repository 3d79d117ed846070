#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A tiny Kubo-RPC-shaped block server for transport tests (TLS, auth, connection caps).

    srv = BlockServer(blocks={cid: bytes}, tls=(certfile, keyfile), auth="Bearer tok",
                      delay=0.05).start()       # binds 127.0.0.1:0; srv.url
    ...
    srv.stop()

Answers POST /api/v0/block/get?arg=CID and /api/v0/version. With auth, a request without
exactly that Authorization header gets 401. Counters: requests, unauthorized, auth_seen
(headers received), and the number of concurrently open client connections (max_conns).
raw_cid(data) gives the CIDv1 (raw, sha2-256, base32) of bytes.
"""
import base64
import hashlib
import http.server
import ssl
import threading
import time
import urllib.parse

from quiethttp import QuietHandler


def raw_cid(data):
    b = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(b).decode().lower().rstrip("=")


class BlockServer:
    def __init__(self, blocks=None, tls=None, auth=None, delay=0.0):
        self.blocks = dict(blocks or {})
        self.tls = tls
        self.auth = auth
        self.delay = delay
        self.lock = threading.Lock()
        self.requests = 0
        self.unauthorized = 0
        self.auth_seen = []
        self.conns = 0
        self.max_conns = 0
        self.server = None
        self.url = None

    def start(self):
        srv = self

        class Handler(QuietHandler):
            def setup(self):
                super().setup()
                with srv.lock:
                    srv.conns += 1
                    srv.max_conns = max(srv.max_conns, srv.conns)

            def finish(self):
                with srv.lock:
                    srv.conns -= 1
                super().finish()

            def _send(self, code, body=b"", ctype="application/octet-stream"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                got = self.headers.get("Authorization")
                with srv.lock:
                    srv.requests += 1
                    srv.auth_seen.append(got)
                if srv.auth is not None and got != srv.auth:
                    with srv.lock:
                        srv.unauthorized += 1
                    self._send(401, b"unauthorized", "text/plain")
                    return
                u = urllib.parse.urlparse(self.path)
                if u.path == "/api/v0/version":
                    self._send(200, b'{"Version":"blocksrv"}', "application/json")
                    return
                if u.path != "/api/v0/block/get":
                    self._send(404)
                    return
                if srv.delay:
                    time.sleep(srv.delay)
                cid = urllib.parse.parse_qs(u.query).get("arg", [""])[0]
                data = srv.blocks.get(cid)
                if data is None:
                    self._send(404)
                else:
                    self._send(200, data)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                pass  # failed TLS handshakes and clients that hang up are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        scheme = "http"
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
