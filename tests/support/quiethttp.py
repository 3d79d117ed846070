# SPDX-License-Identifier: GPL-2.0-or-later
"""The base of the test servers' request handlers (blocksrv, faultgw, pinsvc, rpcproxy):
HTTP/1.1 keep-alive, as the nodes prsmfs talks to, and no access log on stderr.

TCP_NODELAY: a handler writes the headers and then the body; with Nagle's algorithm on a
kept-alive connection the body waits for the ACK of the headers, which the client delays
(40 ms on Linux), so every answer took 40 ms more than it should."""
import http.server


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass
