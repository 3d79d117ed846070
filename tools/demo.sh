#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# README command 1: installs what is missing, builds prsmfs, starts a local IPFS node
# (js-ipfs, loopback only) and mounts prsmfs on a directory.
#   tools/demo.sh [start]   set up and mount (default)
#   tools/demo.sh stop      unmount and stop the node
#   tools/demo.sh status
# Environment: PRSMFS_DEMO_MOUNT (default /mnt/prsmfs), PRSMFS_DEMO_DIR (/var/tmp/prsmfs-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
mnt=${PRSMFS_DEMO_MOUNT:-/mnt/prsmfs}
dir=${PRSMFS_DEMO_DIR:-/var/tmp/prsmfs-demo}
py=/usr/bin/python3

mounted() { grep -qs " $(realpath -m "$mnt") fuse.prsmfs " /proc/self/mounts; }

stop() {
	if mounted; then
		fusermount3 -u "$mnt" || fusermount3 -uz "$mnt"
		echo "unmounted $mnt"
	fi
	if [ -f "$dir/node/nodes.json" ]; then
		"$py" tests/support/ipfsnode.py stop --dir "$dir/node" && echo "stopped the IPFS node"
	fi
}

case ${1:-start} in
stop)
	stop
	exit 0
	;;
status)
	mounted && echo "prsmfs is mounted on $mnt" || echo "prsmfs is not mounted on $mnt"
	[ -f "$dir/node/nodes.json" ] && cat "$dir/node/nodes.json"
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac

bash tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
stop >/dev/null 2>&1 || true
mkdir -p "$dir" "$mnt"
"$py" tests/support/ipfsnode.py start --n 1 --dir "$dir/node" >/dev/null
api=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["api_url"])' "$dir/node/nodes.json")
gw=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["gateway_url"])' "$dir/node/nodes.json")
cat >"$dir/config.json" <<JSON
{
  "rpc_nodes": ["$api"],
  "gateway_nodes": ["$gw"],
  "state_dir": "$dir/state",
  "cache_dir": "$dir/cache"
}
JSON
"$src/build/src/daemon/prsmfs" --config="$dir/config.json" "$mnt"
for _ in $(seq 100); do
	mounted && break
	sleep 0.1
done
mounted || { echo "prsmfs did not mount on $mnt" >&2; exit 1; }
# something to read: this repository's docs, added to the node and linked into the mount
docs=$(curl -sf -X POST -F "file=@README.md;filename=docs/README.md" \
	-F "file=@docs/benchmarks.md;filename=docs/benchmarks.md" \
	"$api/api/v0/add?cid-version=1&raw-leaves=true" | tail -1 |
	"$py" -c 'import json,sys; print(json.load(sys.stdin)["Hash"])')
if [ -n "$docs" ] && [ ! -e "$mnt/docs" ]; then
	"$src/build/tools/prsmctl/prsmctl" link "$docs" "$mnt/docs" >/dev/null
fi
cat <<TXT

prsmfs is mounted on $mnt
  IPFS node (js-ipfs): RPC $api, gateway $gw (repo in $dir/node)
  config: $dir/config.json   index: $dir/state   cache: $dir/cache
Try:   ls -la $mnt; cat $mnt/docs/README.md; df -h $mnt
       prsmctl link CID $mnt/NAME   (prsmctl: $src/build/tools/prsmctl/prsmctl)
       ls $mnt/.ipfs/$docs
Stop:  tools/demo.sh stop      (or: fusermount3 -u $mnt)
TXT
