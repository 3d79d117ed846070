#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Minimal trustless gateway over DIR/<cid> files (Content-Length set, bodies by sendfile).

   cold-cpu-gw.py DIR [DELAY_MS]

Prints its port. DELAY_MS (default 0) holds every block's answer that long before its first
byte, as a gateway that far away would: tools/bench/run's `remote` case."""
import http.server, os, sys, time, urllib.parse
d = sys.argv[1]
delay = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        cid = urllib.parse.urlparse(self.path).path[len("/ipfs/"):]
        if delay and cid != "bafkqaaa":
            time.sleep(delay)
        if cid == "bafkqaaa":
            f, size = None, 0
        else:
            try:
                f = open(os.path.join(d, os.path.basename(cid)), "rb")
                size = os.fstat(f.fileno()).st_size
            except OSError:
                self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.raw")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if f:
            with f:
                self.wfile.flush()
                self.connection.sendfile(f)
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
