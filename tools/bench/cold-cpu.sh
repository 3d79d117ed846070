#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tools/bench/cold-cpu.sh BUILD_ROOT LABEL MIB: a cold `cat | sha256sum` of a MIB-MiB file
# through prsmfs from one local trustless gateway (cold-cpu-gw.py: blocks from files, with
# Content-Length); prints the daemon's CPU time during the cat (utime+stime, per GiB too),
# the cache puts per block and the cache's byte count. Work files in $BENCH_DIR
# (default /tmp/prsmfs-cold-cpu). Run as root (drop_caches); BUILD_ROOT: a release build.
set -eu
build=$(realpath "$1"); label=$2; mib=$3
here=$(dirname "$(realpath "$0")")
w=${BENCH_DIR:-/tmp/prsmfs-cold-cpu}; py=/usr/bin/python3
mkdir -p "$w"
[ -f $w/data$mib.bin ] || head -c $((mib << 20)) /dev/urandom > $w/data$mib.bin
[ -d $w/blocks$mib ] || { mkdir -p $w/blocks$mib; $py $here/export-blocks.py $w/data$mib.bin $w/blocks$mib > $w/root$mib; }
root=$(cat $w/root$mib)
nblocks=$(ls $w/blocks$mib | wc -l)
rm -f $w/port; $py $here/cold-cpu-gw.py $w/blocks$mib > $w/port & spid=$!
for i in $(seq 100); do [ -s $w/port ] && break; sleep 0.1; done; port=$(head -1 $w/port)
rm -rf $w/state $w/cache; mkdir -p $w/mnt
cat > $w/cfg.json <<JSON
{ "rpc_nodes": [], "gateway_nodes": ["http://127.0.0.1:$port"], "automatic_pinning": false,
  "state_dir": "$w/state", "cache_dir": "$w/cache", "timeout": 30 }
JSON
$build/src/daemon/prsmfs -f --config=$w/cfg.json $w/mnt 2>>$w/$label.log & dpid=$!
for i in $(seq 100); do grep -q " $w/mnt fuse" /proc/self/mounts && break; sleep 0.1; done
$build/tools/prsmctl/prsmctl link $root $w/mnt/data.bin >/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
t() { awk '{print $14+$15}' /proc/$dpid/stat; }; f() { awk '{print $10}' /proc/$dpid/stat; }
c0=$(t); f0=$(f); s0=$(date +%s%N)
cat $w/mnt/data.bin | sha256sum > $w/sum.$label
s1=$(date +%s%N); c1=$(t); f1=$(f)
st=$($build/tools/prsmctl/prsmctl -s $w/state/control.sock status)
cmp <(sha256sum < $w/data$mib.bin) $w/sum.$label
hz=$(getconf CLK_TCK)
echo "$st" | $py -c "
import json,sys; s=json.load(sys.stdin)['stats']
cpu=($c1-$c0)/$hz; mib=$mib; n=$nblocks
print('%s: %d MiB, %d blocks: daemon CPU %.2f s (%.2f s per GiB), wall %.1f s, cache puts %d (%.3f per block), cache bytes %d, store fetches %d' % ('$label', mib, n, cpu, cpu*1024/mib, ($s1-$s0)/1e9, s['cache']['puts'], s['cache']['puts']/n, s['cache']['bytes'], s['store']['fetches']) + ', minor faults %d' % ($f1-$f0))"
fusermount3 -u $w/mnt; wait $dpid || true
kill $spid; wait $spid 2>/dev/null || true
