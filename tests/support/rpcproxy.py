#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A recording, tampering RPC proxy in front of one real node, for upload tests.

    px = RpcProxy(node.api_url)          # binds 127.0.0.1:0; px.url is the node for prsmfs
    px.start()
    px.corrupt_add_over = 2 << 20        # add bodies bigger than this reach the node with one
                                         # byte of the file flipped (it stores other leaves and
                                         # answers their root, truthfully)
    px.refuse.add("/api/v0/pin/rm")      # requests to these paths get 503 and never reach
                                         # the node (a node failing just that command)
    px.delay["/api/v0/pin/add"] = 3.0    # requests to these paths wait so many seconds
                                         # before they are forwarded (a slow node)
    ...
    px.requests                          # [(path without query, query dict, body length)]
    px.answered                          # the same, once the node's answer was passed on,
                                         # with its status: [(path, query, body length, status)]
    px.stop()

Every request is forwarded as it came (method, path, body, Content-Type and Authorization);
the node's status, Content-Type and body go back unchanged. When the node does not answer,
the client's connection is closed without an answer (a dead node, as seen through a proxy).
"""
import http.client
import http.server
import threading
import time
import urllib.parse

from quiethttp import QuietHandler


class RpcProxy:
    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.lock = threading.Lock()
        self.requests = []
        self.answered = []
        self.corrupt_add_over = None
        self.corrupted = 0
        self.refuse = set()
        self.delay = {}
        self.server = None
        self.thread = None
        self.url = None

    @property
    def api_url(self):
        """The node's URL as prsmfs sees it (the name IpfsNode uses)."""
        return self.url

    def adds_over(self, size):
        """add requests whose body was bigger than size."""
        with self.lock:
            return [r for r in self.requests if r[0] == "/api/v0/add" and r[2] > size]

    def start(self):
        px = self

        class Handler(QuietHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = bytearray(self.rfile.read(n)) if n else bytearray()
                u = urllib.parse.urlsplit(self.path)
                with px.lock:
                    px.requests.append((u.path, urllib.parse.parse_qs(u.query), len(body)))
                    tamper = (u.path == "/api/v0/add" and px.corrupt_add_over is not None
                              and len(body) > px.corrupt_add_over)
                    if tamper:
                        px.corrupted += 1
                    refused = u.path in px.refuse
                    delay = px.delay.get(u.path, 0)
                if delay:
                    time.sleep(delay)
                if refused:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if tamper:
                    body[len(body) // 2] ^= 0xFF  # inside the file part, far from its framing
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization")}
                try:
                    c = http.client.HTTPConnection(px.host, px.port, timeout=300)
                    c.request("POST", self.path, body=bytes(body), headers=headers)
                    r = c.getresponse()
                    data = r.read()
                    c.close()
                except OSError:
                    self.close_connection = True
                    return
                self.send_response(r.status)
                self.send_header("Content-Type", r.getheader("Content-Type") or "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with px.lock:
                    px.answered.append((u.path, urllib.parse.parse_qs(u.query), len(body),
                                        r.status))

            def handle_error(self, request, client_address):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
