# SPDX-License-Identifier: GPL-2.0-or-later
"""The base of the test servers' request handlers (blocksrv, faultgw, pinsvc, rpcproxy):
HTTP/1.1 keep-alive, as the nodes prsmfs talks to, and no access log on stderr.

TCP_NODELAY: a handler writes the headers and then the body; with Nagle's algorithm on a
kept-alive connection the body waits for the ACK of the headers, which the client delays
(40 ms on Linux), so every answer took 40 ms more than it should."""
import http.server
import json
import threading


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass


def reply_json(handler, code, obj):
    """Answers obj as JSON with status code."""
    body = json.dumps(obj).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(handler_class):
    """Serves handler_class on 127.0.0.1 (a free port) on a thread: (server, url, thread)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, "http://127.0.0.1:%d" % server.server_address[1], thread
