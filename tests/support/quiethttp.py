# SPDX-License-Identifier: GPL-2.0-or-later
"""The base of the test servers' request handlers (blocksrv, faultgw, pinsvc, rpcproxy):
HTTP/1.1 keep-alive, as the nodes prsmfs talks to, and no access log on stderr."""
import http.server


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass
