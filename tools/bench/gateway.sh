# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the benchmarks: nginx on loopback as a trustless gateway for a directory of raw
# blocks named by CID (DIR/blocks, served as application/vnd.ipld.raw at /ipfs/<cid>) and the
# files of DIR itself at /file/<name> (for curl), with the empty identity block that the node
# pool probes gateways with.
#   gateway_start DIR   starts it (pid in DIR/nginx.pid), sets $url to http://127.0.0.1:PORT
#   gateway_stop DIR    stops it by its pid

gateway_need() {
	command -v nginx >/dev/null || {
		echo "$(basename "$0"): nginx is needed (apt-get install -y nginx)" >&2
		exit 1
	}
}

gateway_start() {
	local dir=$1 port
	port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$dir/blocks"
	: >"$dir/blocks/bafkqaaa" # the trustless-gateway probe: the empty identity block
	cat >"$dir/nginx.conf" <<CONF
user root;
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log;
worker_processes 2;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    location /ipfs/ { alias $dir/blocks/; default_type application/vnd.ipld.raw; }
    location /file/ { alias $dir/; default_type application/octet-stream; autoindex on; }
  }
}
CONF
	nginx -c "$dir/nginx.conf" -p "$dir"
	url=http://127.0.0.1:$port
	for _ in $(seq 50); do
		curl -sf -o /dev/null "$url/ipfs/bafkqaaa" && return 0
		sleep 0.1
	done
	echo "$(basename "$0"): nginx does not answer on $url" >&2
	exit 1
}

gateway_stop() {
	if [ -f "$1/nginx.pid" ]; then kill "$(cat "$1/nginx.pid")" 2>/dev/null || true; fi
}
