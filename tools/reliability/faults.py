# SPDX-License-Identifier: GPL-2.0-or-later
"""Faults campaign: three real js-ipfs nodes, each behind a fault-injecting gateway
(tests/support/faultgw.py) that serves its node's real blocks and passes every other RPC call
(add, pin/add, ...) through to it. One mount uses the three gateways as its RPC nodes, with
the on-disk block cache off, so every read that the daemon's 64 MiB of memory cannot answer
fetches through the faults. Meanwhile readers read linked files (random ranges and whole
files, the kernel's pages dropped first) and writers write, fsync and reread files.

Faults, re-drawn every few seconds per gateway with probabilities: wrong bytes (one flipped
byte), a different valid block, truncated bodies, connection resets mid-body, 500/503/429,
HTML error pages (200 text/html and 502 text/html), latency, stalls (an answer that starts
after first_byte_timeout), trickles (a few KiB/s) and hangs. Every few tens of seconds a node
is killed (SIGKILL) and restarted; while it is down its gateway resets every connection (a
dead node, as seen through a proxy).

Figures: blocks served with corrupted bytes (wrong bytes + other valid blocks + truncated
bodies) vs wrong bytes returned to readers (must be 0), EIO count, the longest time any read,
write or fsync waited vs its bound, and files written that ended pinned (every file's CID
pinned on `replicas` nodes once the faults stop and uploads drain).

A read has two bounds. Each FUSE read request is answered within `timeout` of its arrival
(the daemon's longest, `read_wait_max_ms` of `prsmctl status --json`, against timeout + 2 s
of scheduling slack). A 128 KiB pread, the readers' unit, may wait for two requests one after
the other (a readahead request, then the kernel's read of a page it left, or the next
readahead window's), so the syscall's bound is 2 x timeout + 2 s; the preads over one
timeout + 2 s are counted and listed (Findings 10 in docs/reliability.md)."""
import errno
import json
import os
import random
import subprocess
import threading
import time

import dagpb

MiB = 1 << 20
KiB = 1 << 10


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.longest = {}
        self.errors = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def took(self, kind, seconds):
        with self.lock:
            if seconds > self.longest.get(kind, (0,))[0]:
                self.longest[kind] = (seconds, time.strftime("%H:%M:%S"))

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 30:
                self.errors.append(msg)


def draw_faults(gw, rng, severe):
    """Replaces gw's faults with a new random mix (probabilities per request)."""
    gw.clear_faults()
    gw.release.clear()
    scale = rng.choice((0.5, 1.0, 1.5)) if severe else 0.5
    mix = [("corrupt", 0.08, None), ("swap", 0.04, None), ("truncate", 0.03, None),
           ("reset", 0.03, rng.choice((0, 1, 4096, 16000))), ("status", 0.03, 500),
           ("status", 0.02, 503), ("status", 0.03, 429), ("html", 0.02, None),
           ("html", 0.01, 502), ("latency", 0.05, rng.choice((50, 300, 1000))),
           ("latency", 0.004, 6000),  # a stall: longer than first_byte_timeout
           ("bandwidth", 0.01, (8 * KiB, 1024)),  # a trickle
           ("hang", 0.002, None)]
    for kind, p, arg in mix:
        gw.set_fault(kind, p=min(0.5, p * scale), arg=arg)


def node_dead(gw):
    gw.clear_faults()
    gw.set_fault("reset", arg=0)  # every request, no count: the node is down


def run(m, nodes, gws, cfg, seconds, seed, log, prsmctl, dagtool, quick):
    rng = random.Random(seed)
    tally = Tally()
    stop = threading.Event()
    nfiles = 24  # 96 MiB: more than the daemon's 64 MiB of blocks in memory
    fsize = 4 * MiB
    chunk = 64 * KiB  # js-ipfs imports ~25 blocks/s here: fewer, larger blocks
    files = {}
    t0 = time.monotonic()
    # the files are built into one directory DAG locally (dagtool, as `ipfs add -r` would),
    # imported into node 1 as a CAR (dag/import), and the gateways hold the same blocks
    src = os.path.join(os.path.dirname(m.mountpoint), "faults-src")
    os.makedirs(src, exist_ok=True)
    datas = {}
    for i in range(nfiles):
        datas["r%02d" % i] = data_of(seed * 7919 + i, fsize)
        with open(os.path.join(src, "r%02d" % i), "wb") as f:
            f.write(datas["r%02d" % i])
    car = src + ".car"
    root = subprocess.run([dagtool, "dir", "--cid-version", "1", "--chunk", str(chunk),
                           "--car", car, src], capture_output=True, text=True,
                          check=True).stdout.strip()
    roots, blocks = dagpb.read_car(car)
    with open(car, "rb") as f:
        body = f.read()
    # into node 1 only: js-ipfs imports about 1 MB/s on a loaded 2-core machine, and the
    # gateways serve the blocks from memory once they have them anyway
    for n in nodes[:1]:
        mp, ctype = n._multipart([("car", "application/vnd.ipld.car", body)])
        got = n.rpc_json("dag/import", None, mp, timeout=600, content_type=ctype)
        got = got["Root"]["Cid"]["/"]
        if dagpb.cid_bytes(got) != dagpb.cid_bytes(root):
            raise RuntimeError("%s imported the CAR as %s, dagtool says %s" % (n.name, got, root))
    for gw in gws:
        with gw.lock:
            gw.blocks.update(blocks)
    p = prsmctl("link", root, m.path("data"))
    if p.returncode != 0:
        raise RuntimeError("prsmctl link %s: %s" % (root, p.stderr))
    files = {m.path("data", name): data for name, data in datas.items()}
    log("faults: %d files of %d MiB (%d blocks of %d KiB) imported and linked "
        "in %.0f s" % (nfiles, fsize // MiB, len(blocks), chunk // KiB, time.monotonic() - t0))
    for gw in gws:
        draw_faults(gw, rng, not quick)

    paths = sorted(files)
    written = {}  # path -> bytes last closed
    written_lock = threading.Lock()

    def timed(kind, fn, *a):
        t = time.monotonic()
        try:
            return fn(*a)
        finally:
            tally.took(kind, time.monotonic() - t)

    def reader(i):
        r = random.Random(seed * 100 + i)
        while not stop.is_set():
            path = r.choice(paths)
            want = files[path]
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                tally.add("open_errors")
                tally.error("open %s: %s" % (path, e))
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                if r.random() < 0.2:
                    off, n = 0, len(want)
                else:
                    off = r.randrange(len(want))
                    n = r.randint(1, 512 * KiB)
                pos = off
                end = min(len(want), off + n)
                while pos < end:
                    # 128 KiB: the kernel answers it from the page cache it fills by
                    # readahead requests (background ones, which it may queue: finding 9)
                    t0 = time.monotonic()
                    got = timed("read", os.pread, fd, min(128 * KiB, end - pos), pos)
                    took = time.monotonic() - t0
                    if took > cfg["timeout"] + 2.0:
                        tally.add("preads_over_one_timeout")
                        tally.error("slow read: %.1f s at %s for %s at %d (%d bytes)"
                                    % (took, time.strftime("%H:%M:%S"), path, pos,
                                       min(128 * KiB, end - pos)))
                    tally.add("reads")
                    if not got:
                        tally.add("wrong_reads")
                        tally.error("short read of %s at %d: EOF before %d" % (path, pos, end))
                        break
                    tally.add("bytes_read", len(got))
                    if got != want[pos:pos + len(got)]:
                        tally.add("wrong_reads")
                        tally.error("WRONG BYTES from %s at %d (%d bytes)" % (path, pos,
                                                                               len(got)))
                        break
                    pos += len(got)
            except OSError as e:
                tally.add("eio" if e.errno == errno.EIO else "read_errors_other")
                if e.errno != errno.EIO:
                    tally.error("read %s: %s" % (path, e))
            finally:
                os.close(fd)

    def writer(i):
        r = random.Random(seed * 200 + i)
        d = m.path("w%d" % i)
        os.makedirs(d, exist_ok=True)
        k = 0
        while not stop.is_set():
            path = os.path.join(d, "f%03d" % (k % 40))
            k += 1
            data = r.randbytes(r.choice((r.randint(1, 64 * KiB), r.randint(64 * KiB, 3 * MiB))))
            sync = r.random() < 0.25
            try:
                fd = timed("open_write", os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                           0o644)
                try:
                    pos = 0
                    while pos < len(data):
                        pos += timed("write", os.write, fd, data[pos:pos + 256 * KiB])
                    if sync:
                        try:
                            timed("fsync", os.fsync, fd)
                            tally.add("fsyncs")
                        except OSError as e:
                            tally.add("fsync_eio" if e.errno == errno.EIO else "write_errors")
                            if e.errno != errno.EIO:
                                tally.error("fsync %s: %s" % (path, e))
                finally:
                    timed("close", os.close, fd)
                tally.add("files_written")
                with written_lock:
                    written[path] = data
                with open(path, "rb") as f:
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                    got = f.read()
                if got != data:
                    tally.add("wrong_rereads")
                    tally.error("WRONG reread of %s: %d bytes, want %d" % (path, len(got),
                                                                         len(data)))
            except OSError as e:
                tally.add("eio" if e.errno == errno.EIO else "write_errors")
                if e.errno != errno.EIO:
                    tally.error("write %s: %s" % (path, e))

    def chaos():
        r = random.Random(seed * 300)
        period = 5 if quick else 8
        next_kill = time.monotonic() + (15 if quick else 30)
        while not stop.wait(period):
            for gw in gws:
                draw_faults(gw, r, not quick)
            if time.monotonic() >= next_kill:
                i = r.randrange(len(nodes))
                log("faults: kill -9 of node%d" % (i + 1))
                node_dead(gws[i])
                nodes[i].kill()
                tally.add("node_kills")
                stop.wait(r.uniform(3, 10))
                try:
                    nodes[i].start(timeout=90)
                    tally.add("node_restarts")
                except Exception as e:  # noqa: BLE001 - the campaign reports it
                    tally.error("restart of node%d: %s" % (i + 1, e))
                draw_faults(gws[i], r, not quick)
                next_kill = time.monotonic() + r.uniform(20, 60) / (2 if quick else 1)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(8)]
    threads += [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(3)]
    ct = threading.Thread(target=chaos, daemon=True)
    for t in threads + [ct]:
        t.start()
    last = time.monotonic()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(5, max(0, end - time.monotonic())))
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            log("faults: %s; corrupted %d" % (json.dumps(tally.counts, sort_keys=True),
                                              corrupted(gws)))
    stop.set()
    ct.join(120)
    for gw in gws:
        gw.clear_faults()  # releases hung answers
    stuck = []
    for t in threads:
        t.join(180)
        if t.is_alive():
            stuck.append(t.name)
    for n in nodes:
        if not n.alive():
            n.start(timeout=90)

    res = {"files_linked": nfiles, "block_size": chunk, "readers": 8, "writers": 3,
           "injected": {}, "failures": []}
    for gw in gws:
        for k, v in gw.injected.items():
            res["injected"][k] = res["injected"].get(k, 0) + v
    res["gateway_requests"] = sum(gw.requests for gw in gws)
    res["blocks_corrupted"] = corrupted(gws)
    res.update(tally.counts)
    for k in ("wrong_reads", "wrong_rereads", "eio", "fsync_eio", "node_kills"):
        res.setdefault(k, 0)
    res["longest_s"] = {k: round(v[0], 2) for k, v in tally.longest.items()}
    res["longest_at"] = {k: v[1] for k, v in tally.longest.items()}
    bound = cfg["timeout"] + 2.0  # a request's bound, plus scheduling on a loaded machine
    res["bound_s"] = {"read_request": bound, "read": cfg["timeout"] * 2 + 2.0,
                      "fsync": cfg["fsync_timeout"] + 2.0}
    res.setdefault("preads_over_one_timeout", 0)
    st = prsmctl("status", "--json", m.mountpoint)
    try:
        waited = json.loads(st.stdout)["stats"]["fs"]["read_wait_max_ms"] / 1000.0
        res["longest_s"]["read_request"] = round(waited, 2)
    except (ValueError, KeyError, TypeError):
        res["failures"].append("prsmctl status --json gave no read_wait_max_ms: %s %s"
                               % (st.stdout[:300], st.stderr[:300]))
    res["errors"] = tally.errors

    # every file written ends pinned on `replicas` nodes once the faults stop
    left = wait_staging_empty(m, 240)
    res["staging_left"] = len(left)
    pinned_ok = unpinned = 0
    for path, data in sorted(written.items()):
        try:
            cid = os.getxattr(path, "user.prsm.cid").decode()
        except OSError as e:
            unpinned += 1
            res["failures"].append("no CID for %s: %s" % (path, e))
            continue
        on = sum(1 for n in nodes if pinned(n, cid))
        if on >= cfg["replicas"]:
            pinned_ok += 1
        else:
            unpinned += 1
            if unpinned <= 5:
                res["failures"].append("%s (%s) pinned on %d nodes, want %d"
                                       % (path, cid, on, cfg["replicas"]))
        with open(path, "rb") as f:
            if f.read() != data:
                res["failures"].append("after the faults, %s does not hold what was closed"
                                       % path)
    res["written_files"] = len(written)
    res["ended_pinned"] = pinned_ok
    res["not_pinned"] = unpinned

    if res["wrong_reads"] or res["wrong_rereads"]:
        res["failures"].append("%d wrong reads, %d wrong rereads: %s" % (
            res["wrong_reads"], res["wrong_rereads"], [e for e in tally.errors if "WRONG"
                                                       in e or "short" in e][:5]))
    for k in ("read_errors_other", "write_errors", "open_errors"):
        if res.get(k):
            res["failures"].append("%d %s: %s" % (res[k], k, tally.errors[:5]))
    if stuck:
        res["failures"].append("threads still blocked 180 s after the end: %s" % stuck)
    if res["longest_s"].get("read_request", 0) > bound:
        res["failures"].append("a FUSE read request waited %.1f s, bound %.1f s"
                               % (res["longest_s"]["read_request"], bound))
    if res["longest_s"].get("read", 0) > res["bound_s"]["read"]:
        res["failures"].append("a pread waited %.1f s, bound %.1f s"
                               % (res["longest_s"]["read"], res["bound_s"]["read"]))
    if res["longest_s"].get("fsync", 0) > res["bound_s"]["fsync"]:
        res["failures"].append("an fsync waited %.1f s, bound %.1f s"
                               % (res["longest_s"]["fsync"], res["bound_s"]["fsync"]))
    if left:
        res["failures"].append("staging files left 240 s after the faults stopped: %s"
                               % left[:5])
    if not res.get("files_written"):
        res["failures"].append("no file was written")
    return res


def corrupted(gws):
    return sum(gw.injected.get(k, 0) for gw in gws for k in ("corrupt", "swap", "truncate"))


def wait_staging_empty(m, timeout):
    end = time.monotonic() + timeout
    while True:
        try:
            left = sorted(os.listdir(m.staging_dir()))
        except FileNotFoundError:
            left = []
        if not left or time.monotonic() > end:
            return left
        time.sleep(1)


def pinned(node, cid):
    try:
        ans = json.loads(node.rpc("pin/ls", [("arg", cid), ("type", "recursive")], timeout=60))
    except Exception:  # noqa: BLE001 - an error answer means: not pinned
        return False
    return bool(ans.get("Keys"))

