#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Minimal trustless gateway over DIR/<cid> files (Content-Length set), for a CPU measurement."""
import http.server, os, sys, urllib.parse
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        cid = urllib.parse.urlparse(self.path).path[len("/ipfs/"):]
        p = os.path.join(d, cid)
        try:
            data = b"" if cid == "bafkqaaa" else open(p, "rb").read()
        except OSError:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.raw")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
