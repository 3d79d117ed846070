#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The read path side by side (issue 5): one file of MiB random bytes and a tree of FILES empty
# files, imported with the default profile; nginx on loopback serves their raw blocks as a
# trustless gateway (application/vnd.ipld.raw) and the file whole. prsmfs mounts with that
# nginx as its only node (gateway_nodes; no RPC node) and `prsmctl link`s both. Measured:
#   cold sequential read (cache empty) vs curl to disk + sha256sum vs curl -o /dev/null;
#   warm read (blocks on disk, daemon restarted) vs the FUSE ceiling vs local disk (cat, and
#   dd with O_DIRECT: the disk's ceiling);
#   second read (page cache) vs the FUSE page-cache ceiling vs local page cache;
#   4 KiB random preads and mmap (sequential scan, random faults), cold and warm;
#   ls -lR of the tree: first listing (expansion), second, after drop_caches, vs local disk;
#   the daemon's peak RSS (VmHWM) in each phase;
#   the js-ipfs test node as block source (its RPC, block/get): cold read of the first
#   JSIPFS_MIB MiB (default 256) added to it, vs curl of its /api/v0/cat (+ sha256sum).
# Page cache dropped before every cold/warm figure; REPS rounds (default 3), medians reported.
#   tools/bench/read-bench.sh [MiB] [FILES]   (defaults 1024, 100000; as root)
# Environment: REPS (rounds), NRAND (random reads), PHASES (any of "cold warm list jsipfs"),
# JSIPFS_MIB,
# BENCH_RESULTS (a file for the raw "key value" results, one a line: tools/bench/run reads it),
# PRSMFS_BENCH_CONFIG (extra JSON members for the daemon's config, e.g. '"parallel_downloads": 16').
# Needs nginx (tools/setup.sh installs nginx-light), /dev/fuse and a
# release build (made here if missing). Every process and mount it starts is stopped by PID
# on exit.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
mib=${1:-1024}
nfiles=${2:-100000}
reps=${REPS:-3}
nrand=${NRAND:-2000}
build=${PRSMFS_BUILD:-build-release}
phases=" ${PHASES:-cold warm list jsipfs} "
jsmib=${JSIPFS_MIB:-256}
extra_config=${PRSMFS_BENCH_CONFIG:+, $PRSMFS_BENCH_CONFIG}

. tools/bench/gateway.sh
gateway_need
[ "$(id -u)" = 0 ] || {
	echo "read-bench: run as root (drop_caches, mounts, read_ahead_kb)" >&2
	exit 1
}
[ -c /dev/fuse ] || {
	echo "read-bench: /dev/fuse is missing" >&2
	exit 1
}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" src/daemon/prsmfs tools/prsmctl/prsmctl tools/fuse-ceiling/fuse-ceiling \
	tools/bench/read-probe tests/support/dagtool tests/support/netfetch >/dev/null
prsmfs=$PWD/$build/src/daemon/prsmfs
prsmctl=$PWD/$build/tools/prsmctl/prsmctl
ceiling=$PWD/$build/tools/fuse-ceiling/fuse-ceiling
probe=$PWD/$build/tools/bench/read-probe
dagtool=$PWD/$build/tests/support/dagtool
netfetch=$PWD/$build/tests/support/netfetch
py=/usr/bin/python3

work=$(mktemp -d /var/tmp/prsmfs-readbench.XXXXXX)
mnt=$work/mnt
cmnt=$work/ceiling
mkdir -p "$mnt" "$cmnt"
res=${BENCH_RESULTS:-$work/results} # tools/bench/run reads it from BENCH_RESULTS
: >"$res"
dpid= # the running prsmfs or fuse-ceiling, and its mount point
dmnt=
node_started=

stop_fs() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$dpid" 2>/dev/null; then
		echo "read-bench: pid $dpid did not stop on SIGTERM; killing it" >&2
		kill -KILL "$dpid" 2>/dev/null || true
	fi
	wait "$dpid" 2>/dev/null || true
	if grep -q " $dmnt fuse" /proc/self/mounts; then fusermount3 -uz "$dmnt" 2>/dev/null || true; fi
	dpid=
	dmnt=
}

cleanup() {
	local rc=$?
	stop_fs
	gateway_stop "$work"
	# the node's own CLI stops the PIDs it recorded in nodes.json
	if [ -n "$node_started" ]; then $py tests/support/ipfsnode.py stop --dir "$work/node" >/dev/null 2>&1 || true; fi
	for m in "$mnt" "$cmnt"; do
		if grep -q " $m fuse" /proc/self/mounts; then fusermount3 -uz "$m" 2>/dev/null || true; fi
	done
	if [ -n "${PRSMFS_BENCH_KEEP:-}" ]; then echo "read-bench: kept $work" >&2; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
now_ns() { date +%s%N; }
record() { echo "$1 $2" >>"$res"; } # key value
timed() {                           # key command...: seconds of one run, recorded
	local t0 t1
	t0=$(now_ns)
	"${@:2}" >/dev/null
	t1=$(now_ns)
	record "$1" "$(((t1 - t0) / 1000))e-6"
}
probe_rec() { # key probe-args...: the probe's own count and seconds
	local out
	out=$("$probe" "${@:2}" 2>/dev/null)
	record "$1" "${out#* }"
	record "$1.count" "${out%% *}"
}

# bdi (MAJ:MIN) of the FUSE mount at $1, from mountinfo (stat would ask the daemon)
bdi_of() { awk -v m="$1" '$5 == m && / - fuse/ { d = $3 } END { print d }' /proc/self/mountinfo; }

wait_mount() { # mountpoint pid log
	for _ in $(seq 200); do
		if ! kill -0 "$2" 2>/dev/null; then
			echo "read-bench: the file system for $1 exited; its log:" >&2
			tail -20 "$3" >&2
			exit 1
		fi
		if grep -q " $1 fuse" /proc/self/mounts && stat "$1" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	echo "read-bench: $1 not mounted after 10 s" >&2
	exit 1
}

start_prsmfs() { # state_dir cache_dir [rpc_node]: nginx as the only gateway, or that node
	local nodes="\"rpc_nodes\": [], \"gateway_nodes\": [\"$url\"]"
	[ -z "${3:-}" ] || nodes="\"rpc_nodes\": [\"$3\"], \"gateway_nodes\": []"
	cat >"$work/prsmfs.json" <<JSON
{ $nodes, "automatic_pinning": false,
  "state_dir": "$1", "cache_dir": "$2", "timeout": 30$extra_config }
JSON
	"$prsmfs" -f --config="$work/prsmfs.json" "$mnt" 2>>"$work/prsmfs.log" &
	dpid=$!
	dmnt=$mnt
	wait_mount "$mnt" "$dpid" "$work/prsmfs.log"
	sock=$1/control.sock
}

start_ceiling() { # extra -o options
	"$ceiling" -f -o "size=$bytes$1" "$cmnt" 2>>"$work/ceiling.log" &
	dpid=$!
	dmnt=$cmnt
	wait_mount "$cmnt" "$dpid" "$work/ceiling.log"
	# the same kernel readahead as prsmfs gives its own mount
	echo "$ra_kb" >"/sys/class/bdi/$(bdi_of "$cmnt")/read_ahead_kb"
}

daemon_stat() { "$prsmctl" -s "$sock" status | $py -c "import json,sys; print(json.load(sys.stdin)['stats']['$1']['$2'])"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$dpid/status"; }
# HTTP requests the daemon sent to its nodes (block fetches, after deduplication, and probes)
net_fetches() { "$prsmctl" -s "$sock" status | $py -c 'import json,sys; print(sum(n["requests"] for n in json.load(sys.stdin)["stats"]["nodes"]))'; }

# --- content and block source -----------------------------------------------------------
echo "read-bench: preparing $mib MiB and a tree of $nfiles files in $work" >&2
bytes=$((mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/data.bin"
root=$($py tools/bench/export-blocks.py "$work/data.bin" "$work/blocks")
want=$("$dagtool" file --profile default <"$work/data.bin")
[ "$root" = "$want" ] || {
	echo "read-bench: export-blocks root $root != dagtool $want" >&2
	exit 1
}
$py tools/bench/make-tree.py "$work/tree" "$nfiles"
tree_root=$("$dagtool" dir --car "$work/tree.car" "$work/tree")
tree_blocks=$($py tools/bench/car-blocks.py "$work/tree.car" "$work/blocks")
rm -f "$work/tree.car"
gateway_start "$work"

state=$work/state
cache=$work/cache
start_prsmfs "$state" "$cache"
ra_kb=$(cat "/sys/class/bdi/$(bdi_of "$mnt")/read_ahead_kb")
"$prsmctl" link "$root" "$mnt/data.bin" >/dev/null
stop_fs

# --- 1. cold: curl, curl + sha256sum, prsmfs (cat, mmap, random) with the cache empty ----
want() { [[ $phases == *" $1 "* ]]; }

for rep in $(seq "$reps"); do
	want cold || break
	echo "read-bench: cold round $rep/$reps" >&2
	drop
	timed curl_null curl -sf -o /dev/null "$url/file/data.bin"
	drop
	timed dl_verify bash -c "curl -sf -o '$work/dl.bin' '$url/file/data.bin' && sha256sum '$work/dl.bin'"
	rm -f "$work/dl.bin"
	drop
	timed pool "$netfetch" --gateway "$url" --parallel 8 --out /dev/null --file "$root" 2>/dev/null
	drop
	probe_rec local_mmap_cold mmap-seq "$work/data.bin"
	drop
	probe_rec local_rand_cold rand "$work/data.bin" "$nrand"

	rm -rf "$cache"
	start_prsmfs "$state" "$cache"
	drop
	timed prsm_cold cat "$mnt/data.bin"
	record hwm_cold "$(hwm_kib)"
	record fetch_cold "$(net_fetches)"
	stop_fs

	rm -rf "$cache"
	start_prsmfs "$state" "$cache"
	drop
	probe_rec prsm_mmap_cold mmap-seq "$mnt/data.bin"
	record hwm_mmap_cold "$(hwm_kib)"
	stop_fs

	rm -rf "$cache"
	start_prsmfs "$state" "$cache"
	drop
	probe_rec prsm_rand_cold rand "$mnt/data.bin" "$nrand"
	record fetch_rand_cold "$(net_fetches)"
	stop_fs
done

# --- 2/3. warm (every block in the disk cache, daemon restarted) and page cache ---------
if want warm; then
	rm -rf "$cache"
	start_prsmfs "$state" "$cache"
	cat "$mnt/data.bin" >/dev/null
	cmp "$mnt/data.bin" "$work/data.bin" || {
		echo "read-bench: prsmfs returned different bytes" >&2
		exit 1
	}
	stop_fs
fi
for rep in $(seq "$reps"); do
	want warm || break
	echo "read-bench: warm round $rep/$reps" >&2
	start_prsmfs "$state" "$cache"
	drop
	timed prsm_warm cat "$mnt/data.bin"
	timed prsm_pc cat "$mnt/data.bin"
	record hwm_warm "$(hwm_kib)"
	record fetch_warm "$(net_fetches)"
	stop_fs

	# the same with the cache's files in the page cache: the daemon without the disk
	start_prsmfs "$state" "$cache"
	drop
	find "$cache" -type f -exec cat {} + >/dev/null
	timed prsm_warm_mem cat "$mnt/data.bin"
	stop_fs

	start_prsmfs "$state" "$cache"
	drop
	probe_rec prsm_mmap_warm mmap-seq "$mnt/data.bin"
	stop_fs

	start_prsmfs "$state" "$cache"
	drop
	probe_rec prsm_rand_warm rand "$mnt/data.bin" "$nrand"
	record fetch_rand_warm "$(net_fetches)"
	record disk_rand_warm "$(daemon_stat store disk_hits)"
	record kreads_rand_warm "$(daemon_stat fs reads)"
	record kbytes_rand_warm "$(daemon_stat fs read_bytes)"
	stop_fs

	start_prsmfs "$state" "$cache"
	drop
	probe_rec prsm_mmaprand_warm mmap-rand "$mnt/data.bin" "$nrand"
	record fetch_mmaprand_warm "$(net_fetches)"
	stop_fs

	start_ceiling ""
	drop
	timed ceil_cold cat "$cmnt/data"
	stop_fs
	start_ceiling ",keep_cache"
	cat "$cmnt/data" >/dev/null
	timed ceil_pc cat "$cmnt/data"
	stop_fs

	drop
	timed local_cold cat "$work/data.bin"
	timed local_pc cat "$work/data.bin"
	drop # the disk's own ceiling: large direct reads, no page cache, no readahead limits
	timed local_direct dd if="$work/data.bin" of=/dev/null bs=16M iflag=direct
	drop
	probe_rec local_mmaprand_cold mmap-rand "$work/data.bin" "$nrand"
done

# --- 6. ls -lR of the tree: first listing (expansion), second, after drop_caches --------
for rep in $(seq "$reps"); do
	want list || break
	echo "read-bench: listing round $rep/$reps" >&2
	rm -rf "$work/tstate" "$work/tcache"
	start_prsmfs "$work/tstate" "$work/tcache"
	"$prsmctl" link "$tree_root" "$mnt/tree" >/dev/null
	drop
	timed ls_first ls -lR "$mnt/tree"
	record fetch_ls_first "$(net_fetches)"
	timed ls_second ls -lR "$mnt/tree"
	drop
	timed ls_index ls -lR "$mnt/tree"
	record fetch_ls_index "$(net_fetches)"
	record hwm_ls "$(hwm_kib)"
	stop_fs
	drop
	timed ls_local_cold ls -lR "$work/tree"
	timed ls_local_warm ls -lR "$work/tree"
done
lines=$(ls -R "$work/tree" | wc -l)

# --- 7. the js-ipfs node as block source (RPC block/get), cold --------------------------
if want jsipfs; then
	echo "read-bench: js-ipfs node as block source, $jsmib MiB" >&2
	mkdir -p "$work/node"
	node_started=1
	api=$($py tests/support/ipfsnode.py start --n 1 --dir "$work/node" | tail -1)
	head -c $((jsmib * 1048576)) "$work/data.bin" >"$work/js.bin"
	jsroot=$(curl -sf -X POST -F "file=@$work/js.bin" \
		"$api/api/v0/add?cid-version=1&raw-leaves=true&chunker=size-1048576&pin=true" |
		$py -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["Hash"])')
	rm -rf "$work/jsstate" "$work/jscache"
	start_prsmfs "$work/jsstate" "$work/jscache" "$api"
	"$prsmctl" link "$jsroot" "$mnt/js.bin" >/dev/null
	cmp "$mnt/js.bin" "$work/js.bin" || {
		echo "read-bench: prsmfs returned different bytes from the js-ipfs node" >&2
		exit 1
	}
	stop_fs
	for rep in $(seq "$reps"); do
		echo "read-bench: js-ipfs round $rep/$reps" >&2
		drop
		timed js_curl_null curl -sf -X POST -o /dev/null "$api/api/v0/cat?arg=$jsroot"
		drop
		timed js_dl_verify bash -c "curl -sf -X POST -o '$work/dl.bin' '$api/api/v0/cat?arg=$jsroot' && sha256sum '$work/dl.bin'"
		rm -f "$work/dl.bin"
		rm -rf "$work/jscache"
		start_prsmfs "$work/jsstate" "$work/jscache" "$api"
		drop
		timed js_prsm_cold cat "$mnt/js.bin"
		stop_fs
	done
fi

# --- table ------------------------------------------------------------------------------
echo
echo "prsmfs read path, $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, kernel $(uname -r)," \
	"libfuse $(pkg-config --modversion fuse3 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file $mib MiB ($root), tree of $nfiles files ($tree_root, $tree_blocks blocks in its CAR," \
	"ls -lR prints $lines lines); read_ahead_kb $ra_kb on both FUSE mounts; $nrand random 4 KiB" \
	"reads; median of $reps (range)"
echo
$py - "$res" "$bytes" "$((jsmib * 1048576))" <<'PY'
import collections, statistics, sys
vals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split()
    vals[k].append(float(v))
nbytes = int(sys.argv[2])
med = {k: statistics.median(v) for k, v in vals.items()}

jsbytes = int(sys.argv[3])

def size_of(k):
    return jsbytes if k.startswith("js_") else nbytes

def mbs(k):
    return size_of(k) / med[k] / 1e6

def rng(k, f):
    xs = sorted(f(x) for x in vals[k])
    return "%.0f–%.0f" % (xs[0], xs[-1])

def row(what, k, ref=None, refname=""):
    if k not in med or (ref and ref not in med):
        return
    ratio = "%.2f× %s" % (mbs(k) / mbs(ref), refname) if ref else ""
    print("| %s | %.0f [%s] | %.3f | %s |" % (what, mbs(k), rng(k, lambda s: size_of(k) / s / 1e6), med[k], ratio))

def rate(what, k, ref=None, refname=""):
    if k not in med or (ref and ref not in med):
        return
    n = med[k + ".count"]
    ratio = "%.2f× %s" % ((n / med[k]) / (med[ref + ".count"] / med[ref]), refname) if ref else ""
    print("| %s | %.0f/s [%s] | %.3f | %s |" % (what, n / med[k], rng(k, lambda s: n / s), med[k], ratio))

print("| what | MB/s or ops/s [range] | seconds | ratio |")
print("|---|---|---|---|")
print("| **1. cold (nothing cached, page cache dropped)** | | | |")
row("`curl -o /dev/null` (network ceiling)", "curl_null")
row("`curl` to disk + `sha256sum` (download-then-verify)", "dl_verify", "curl_null", "curl")
row("node pool alone (`netfetch`, 8 in flight, verified, no FUSE, no cache)", "pool", "curl_null", "curl")
row("prsmfs `cat` (cache empty)", "prsm_cold", "dl_verify", "download-then-verify")
row("", "prsm_cold", "curl_null", "curl -o /dev/null")
row("", "prsm_cold", "pool", "node pool alone")
print("| **2. warm (blocks in the disk cache, daemon restarted, page cache dropped)** | | | |")
row("FUSE ceiling `cat` (fuse-ceiling, from memory)", "ceil_cold")
row("local disk `cat`", "local_cold")
row("local disk `dd bs=16M iflag=direct` (the disk's ceiling)", "local_direct")
row("prsmfs `cat` (warm)", "prsm_warm", "ceil_cold", "FUSE ceiling")
row("", "prsm_warm", "local_cold", "local disk")
row("", "prsm_warm", "local_direct", "the disk's ceiling")
row("prsmfs `cat` (warm, cache files in the page cache: no disk)", "prsm_warm_mem", "ceil_cold", "FUSE ceiling")
print("| **3. second read (page cache)** | | | |")
row("FUSE page-cache ceiling (fuse-ceiling, keep_cache)", "ceil_pc")
row("local page cache `cat`", "local_pc")
row("prsmfs second `cat`", "prsm_pc", "ceil_pc", "FUSE page-cache ceiling")
row("", "prsm_pc", "local_pc", "local page cache")
print("| **4. 4 KiB random preads** | | | |")
rate("local disk, page cache dropped", "local_rand_cold")
rate("prsmfs cold (cache empty)", "prsm_rand_cold", "local_rand_cold", "local")
rate("prsmfs warm (disk cache, daemon restarted)", "prsm_rand_warm", "local_rand_cold", "local")
print("| **5. mmap** | | | |")
row("local disk mmap scan, cold", "local_mmap_cold")
row("prsmfs mmap scan, cold (cache empty)", "prsm_mmap_cold", "prsm_cold", "prsmfs cold cat (target ≥ 0.5)")
row("prsmfs mmap scan, warm", "prsm_mmap_warm", "prsm_warm", "prsmfs warm cat")
rate("local disk random page faults, cold", "local_mmaprand_cold")
rate("prsmfs random page faults, warm", "prsm_mmaprand_warm", "local_mmaprand_cold", "local")
print("| **6. `ls -lR` of the tree** | | | |")
def ls(what, k, ref=None):
    if k not in med:
        return
    ratio = "%.2f× the time of local" % (med[k] / med[ref]) if ref else ""
    xs = sorted(vals[k])
    print("| %s | | %.3f [%.3f–%.3f] | %s |" % (what, med[k], xs[0], xs[-1], ratio))
ls("local disk, cold (dentries dropped)", "ls_local_cold")
ls("local disk, warm", "ls_local_warm")
ls("prsmfs first listing (expansion, directory blocks from nginx)", "ls_first", "ls_local_cold")
ls("prsmfs second listing", "ls_second", "ls_local_warm")
ls("prsmfs after drop_caches (from the index)", "ls_index", "ls_local_cold")
print("| **7. js-ipfs node as block source (%d MiB, cold)** | | | |" % (jsbytes >> 20))
row("`curl` of the node's `/api/v0/cat` to /dev/null", "js_curl_null")
row("`curl` of `/api/v0/cat` to disk + `sha256sum`", "js_dl_verify", "js_curl_null", "curl")
row("prsmfs `cat`, the node as its only RPC node (block/get)", "js_prsm_cold", "js_dl_verify", "download-then-verify")
row("", "js_prsm_cold", "js_curl_null", "curl of cat")
print()
print("daemon peak RSS (VmHWM, MiB, max of rounds):", ", ".join(
    "%s %.0f" % (name, max(vals[k]) / 1024) for name, k in (
        ("cold cat", "hwm_cold"), ("cold mmap", "hwm_mmap_cold"), ("warm cat", "hwm_warm"),
        ("ls -lR", "hwm_ls")) if k in vals))
print("HTTP requests to nginx (median; blocks, plus the gateway probe):", ", ".join(
    "%s %d" % (name, med[k]) for name, k in (
        ("cold cat", "fetch_cold"), ("cold random", "fetch_rand_cold"), ("warm cat", "fetch_warm"),
        ("warm random", "fetch_rand_warm"), ("warm random faults", "fetch_mmaprand_warm"),
        ("ls -lR first", "fetch_ls_first"), ("ls -lR after drop_caches, cumulative", "fetch_ls_index"))
    if k in med))
if "disk_rand_warm" in med:
    print("warm random preads: %d FUSE reads of %.0f KiB on average, %d whole blocks loaded from the disk cache"
          % (med["kreads_rand_warm"], med["kbytes_rand_warm"] / med["kreads_rand_warm"] / 1024,
             med["disk_rand_warm"]))
PY
