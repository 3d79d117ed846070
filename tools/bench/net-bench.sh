#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetch throughput of a file through the node pool (verified, parallel) against curl
# downloading the same bytes from the same server. The server is nginx on loopback serving
# raw blocks (application/vnd.ipld.raw, a trustless gateway's answer) and the whole file.
#   tools/bench/net-bench.sh [MiB]     (default 1024; needs nginx and a release build)
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
mib=${1:-1024}
work=$(mktemp -d /var/tmp/prsmfs-netbench.XXXXXX)
build=${PRSMFS_BUILD:-build-release}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" tests/support/netfetch tests/support/dagtool >/dev/null
. tools/bench/gateway.sh
gateway_need

cleanup() {
	gateway_stop "$work"
	rm -rf "$work"
}
trap cleanup EXIT
[ -n "${PRSMFS_BENCH_KEEP:-}" ] && trap - EXIT

head -c $((mib * 1048576)) /dev/urandom >"$work/data.bin"
root=$(/usr/bin/python3 tools/bench/export-blocks.py "$work/data.bin" "$work/blocks")
want=$("$build/tests/support/dagtool" file --profile default <"$work/data.bin")
[ "$root" = "$want" ] || { echo "export-blocks root $root != dagtool $want" >&2; exit 1; }

gateway_start "$work"

secs() { /usr/bin/python3 -c 'import sys,time; print(time.time())'; }
run() { # label command...
	local best=999999 t0 t1 dt
	for _ in 1 2 3; do
		sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
		t0=$(secs)
		"${@:2}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; echo "failed: $1" >&2; exit 1; }
		t1=$(secs)
		dt=$(/usr/bin/python3 -c "print($t1-$t0)")
		best=$(/usr/bin/python3 -c "print(min($best,$dt))")
	done
	/usr/bin/python3 -c "print('| %s | %.0f | %.2f |' % ('$1', $mib*1048576/$best/1e6, $best))"
}
echo "| what ($mib MiB, best of 3, page cache dropped before each) | MB/s | seconds |"
echo "|---|---|---|"
run "curl -o /dev/null (raw network ceiling)" curl -sf -o /dev/null "$url/file/data.bin"
run "curl to disk, then sha256sum (download-then-verify)" \
	bash -c "curl -sf -o '$work/dl.bin' '$url/file/data.bin' && sha256sum '$work/dl.bin'"
run "netfetch: pool, 8 parallel, every block verified" \
	"$build/tests/support/netfetch" --gateway "$url" --parallel 8 --out /dev/null --file "$root"
run "netfetch: pool, 16 parallel, every block verified" \
	"$build/tests/support/netfetch" --gateway "$url" --parallel 16 --out /dev/null --file "$root"
