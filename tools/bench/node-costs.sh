#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What one js-ipfs node spends on the ways a file can reach it (issue 6), in interleaved
# rounds, each on new random bytes: the node's own add (pin=true); the same add with
# pin=false followed by pin/add of its root; the upload module (tests/support/uploadtool
# --fd: runs of 8 MiB, two in flight, no FUSE, no staging) with --no-pin followed by pin/add
# of its root; and the module with its own pin. Wall seconds and node CPU seconds
# (/proc/PID/stat) per step.
#   tools/bench/node-costs.sh [MiB] [ROUNDS]    (defaults 256, 3)
# Needs the js-ipfs node (tools/setup.sh) and a release build (made if missing). The node it
# starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
mib=${1:-256}
rounds=${2:-3}
build=${PRSMFS_BUILD:-build-release}
py=/usr/bin/python3
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" tests/support/uploadtool >/dev/null
tool=$PWD/$build/tests/support/uploadtool
work=$(mktemp -d /var/tmp/prsmfs-nodecosts.XXXXXX)
node_started=

cleanup() {
	local rc=$?
	if [ -n "$node_started" ]; then $py tests/support/ipfsnode.py stop --dir "$work/node" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/node"
node_started=1
api=$($py tests/support/ipfsnode.py start --n 1 --dir "$work/node" | tail -1)
npid=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["pid"])' "$work/node/nodes.json")
q="cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32"

cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$npid/stat"; }
now() { date +%s.%N; }
report() { # label t0 t1 cpu0 cpu1
	awk -v l="$1" -v t0="$2" -v t1="$3" -v c0="$4" -v c1="$5" \
		'BEGIN { printf "%-34s %6.2f s   node CPU %6.2f s\n", l, t1 - t0, c1 - c0 }'
}
fresh() { head -c $((mib * 1048576)) /dev/urandom >"$work/src"; sync; }
last_hash() { $py -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.strip()][-1]["Hash"])'; }
pin_root() { # label root
	local t0 c0
	t0=$(now) c0=$(cpu)
	curl -sf -X POST "$api/api/v0/pin/add?arg=$2" >/dev/null
	report "$1" "$t0" "$(now)" "$c0" "$(cpu)"
}

# a fresh js-ipfs node spends up to twice the CPU on its first GiB or two (measured
# 2026-12-02): one untimed add first, so that no step pays for the warm-up
fresh
curl -sf -X POST -F "file=@$work/src" "$api/api/v0/add?$q&pin=true" >/dev/null
echo "node-costs: $mib MiB, $rounds rounds, js-ipfs node $api, $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	echo "round $r"
	fresh
	t0=$(now) c0=$(cpu)
	curl -sf -X POST -F "file=@$work/src" "$api/api/v0/add?$q&pin=true" >/dev/null
	report "add pin=true" "$t0" "$(now)" "$c0" "$(cpu)"

	fresh
	t0=$(now) c0=$(cpu)
	root=$(curl -sf -X POST -F "file=@$work/src" "$api/api/v0/add?$q&pin=false" | last_hash)
	report "add pin=false" "$t0" "$(now)" "$c0" "$(cpu)"
	pin_root "  + pin/add of its root" "$root"

	fresh
	t0=$(now) c0=$(cpu)
	root=$("$tool" --rpc "$api" --parallel 5 --no-pin --fd "$work/src" |
		$py -c 'import json,sys; print(json.load(sys.stdin)["root"])')
	report "uploadtool --no-pin" "$t0" "$(now)" "$c0" "$(cpu)"
	pin_root "  + pin/add of its root" "$root"

	fresh
	t0=$(now) c0=$(cpu)
	"$tool" --rpc "$api" --parallel 5 --fd "$work/src" >/dev/null
	report "uploadtool (its own pin)" "$t0" "$(now)" "$c0" "$(cpu)"
done
