# SPDX-License-Identifier: GPL-2.0-or-later
"""Load campaign: 16 concurrent readers (4 sequential, 2 random, 2 mmap, 8 threads on one
shared fd) of uploaded files, 4 writers and a metadata walker for a bounded time; every byte
read is compared with what was written. Reports operations, errors, wrong bytes, p50/p99
latency per operation kind, and the daemon's RSS, open fds and threads: before, and after each
of two halves of the load once its uploads finished ("settled"). The second half must not grow
what the first left (fds other than sockets and pipes, threads, RSS beyond GROWTH_RSS; pipes
at most two per thread): what the first half takes is warm-up (caches, queues, ASan's
quarantine), what the second adds again would be a leak."""
import mmap
import os
import random
import threading
import time

MiB = 1 << 20
FILES = 4
FILE_SIZE = 8 * MiB
GROWTH_FDS = 4        # fds the second half may add to the first's settled count
GROWTH_THREADS = 2    # threads, likewise (an upload runner started late)
GROWTH_RSS = 0.2      # RSS, as a fraction of the first half's settled RSS
SETTLE_TIMEOUT = 180  # seconds for the uploads of a half to finish


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


def settle(m, pid):
    """The daemon's figures once its staging directory is empty (uploads done) and 2 s later;
    and whether it emptied within SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    settled = False
    while time.monotonic() < deadline:
        try:
            settled = not os.listdir(m.staging_dir())
        except FileNotFoundError:
            settled = True
        if settled:
            break
        time.sleep(0.5)
    time.sleep(2)
    out = proc_figures(pid)
    out["uploads_done"] = settled
    return out


def growth_failures(mid, end):
    """Files and other fds must not grow. Sockets are the node pool's connections (curl keeps
    up to its limit, more or fewer with the load's concurrency); pipes are libfuse's, one pair
    per thread that ever answered by splice, freed with the thread: at most two per thread."""
    out = []
    other = [sum(v for k, v in f["fd_kinds"].items() if k not in ("socket", "pipe"))
             for f in (mid, end)]
    if other[1] > other[0] + GROWTH_FDS:
        out.append("open fds other than sockets and pipes grew in the second half: %s -> %s"
                   % (mid["fd_kinds"], end["fd_kinds"]))
    if end["fd_kinds"].get("pipe", 0) > 2 * end["threads"]:
        out.append("more pipes than two per thread: %s, %d threads"
                   % (end["fd_kinds"], end["threads"]))
    if end["threads"] > mid["threads"] + GROWTH_THREADS:
        out.append("threads grew in the second half: %d -> %d" % (mid["threads"], end["threads"]))
    if end["rss_kib"] > mid["rss_kib"] * (1 + GROWTH_RSS):
        out.append("RSS grew in the second half by more than %d %%: %d -> %d KiB"
                   % (GROWTH_RSS * 100, mid["rss_kib"], end["rss_kib"]))
    if not (mid["uploads_done"] and end["uploads_done"]):
        out.append("uploads still pending %d s after a half" % SETTLE_TIMEOUT)
    return out


def fd_kind(pid, fd):
    try:
        t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
    except OSError:
        return "gone"
    return ("socket" if t.startswith("socket:") else "pipe" if t.startswith("pipe:")
            else "anon" if t.startswith("anon_inode:") else "file")


def proc_figures(pid):
    fds = os.listdir("/proc/%d/fd" % pid)
    out = {"fds": len(fds), "fd_kinds": {}}
    for fd in fds:
        k = fd_kind(pid, fd)
        out["fd_kinds"][k] = out["fd_kinds"].get(k, 0) + 1
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kib"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {}
        self.errors = []
        self.wrong = 0
        self.bytes = 0

    def add(self, kind, seconds, nbytes=0):
        with self.lock:
            self.lat.setdefault(kind, []).append(seconds)
            self.bytes += nbytes

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(msg)

    def summary(self):
        out = {}
        for kind, xs in sorted(self.lat.items()):
            xs = sorted(xs)
            out[kind] = {"ops": len(xs), "p50_ms": round(1000 * xs[len(xs) // 2], 2),
                         "p99_ms": round(1000 * xs[min(len(xs) - 1, int(len(xs) * 0.99))], 2)}
        return out


def run(m, seconds, seed, log):
    root = m.path("load")
    os.makedirs(root, exist_ok=True)
    contents = []
    for i in range(FILES):
        data = data_of(seed * 100 + i, FILE_SIZE)
        p = os.path.join(root, "r%d" % i)
        with open(p, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # uploaded and pinned: reads come from the node's blocks
        contents.append((p, data))
    os.sync()
    pid = m.proc.pid
    before = proc_figures(pid)
    stats = Stats()
    end = 0  # of the current half; the threads read it as they go

    def timed(kind, fn, nbytes=0):
        t0 = time.monotonic()
        r = fn()
        stats.add(kind, time.monotonic() - t0, nbytes)
        return r

    def check(kind, got, want):
        if got != want:
            with stats.lock:
                stats.wrong += 1
            stats.error("%s: %d of the first %d bytes differ; got %d bytes, want %d"
                        % (kind, sum(a != b for a, b in zip(got, want)), min(len(got), len(want)),
                           len(got), len(want)))

    def guarded(fn):
        def body(*a):
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - counted as an error of the campaign
                stats.error("%s: %r" % (fn.__name__, e))
        return body

    @guarded
    def sequential(i):
        p, data = contents[i % FILES]
        while time.monotonic() < end:
            with open(p, "rb", buffering=0) as f:
                off = 0
                while True:
                    b = timed("seq_read_1MiB", lambda: f.read(MiB), MiB)
                    if not b:
                        break
                    check("sequential", b, data[off:off + len(b)])
                    off += len(b)
            if off != len(data):
                stats.error("sequential: read %d of %d bytes" % (off, len(data)))

    @guarded
    def rand(i):
        rng = random.Random(seed + i)
        p, data = contents[i % FILES]
        fd = os.open(p, os.O_RDONLY)
        try:
            while time.monotonic() < end:
                off, n = rng.randrange(len(data)), rng.randrange(1, 256 * 1024)
                b = timed("random_pread", lambda: os.pread(fd, n, off), n)
                check("random", b, data[off:off + n])
        finally:
            os.close(fd)

    @guarded
    def mapped(i):
        rng = random.Random(seed + 50 + i)
        p, data = contents[i % FILES]
        fd = os.open(p, os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, len(data), prot=mmap.PROT_READ)
            try:
                while time.monotonic() < end:
                    off, n = rng.randrange(len(data)), rng.randrange(1, 512 * 1024)
                    b = timed("mmap_read", lambda: mm[off:off + n], n)
                    check("mmap", b, data[off:off + n])
            finally:
                mm.close()
        finally:
            os.close(fd)

    shared_fd = os.open(contents[0][0], os.O_RDONLY)

    @guarded
    def shared(i):
        rng = random.Random(seed + 100 + i)
        data = contents[0][1]
        while time.monotonic() < end:
            off, n = rng.randrange(len(data)), rng.randrange(1, 1024 * 1024)
            b = timed("shared_fd_pread", lambda: os.pread(shared_fd, n, off), n)
            check("shared fd", b, data[off:off + n])

    @guarded
    def writer(i):
        rng = random.Random(seed + 200 + i)
        k = 0
        while time.monotonic() < end:
            n = rng.choice((rng.randrange(1, 64 * 1024), rng.randrange(1, 4 * MiB)))
            data = data_of(rng.getrandbits(32), n)
            p = os.path.join(root, "w%d-%d" % (i, k % 8))
            k += 1

            def write():
                with open(p, "wb") as f:
                    f.write(data)
            timed("write_close", write, n)
            with open(p, "rb") as f:
                check("writer reread", timed("reread", f.read, n), data)

    @guarded
    def walker():
        while time.monotonic() < end:
            def walk():
                for dirpath, _, files in os.walk(root):
                    for f in files:
                        try:
                            os.stat(os.path.join(dirpath, f))
                        except FileNotFoundError:
                            pass  # a writer's file between create and ... (none unlink here)
            timed("walk_stat", walk)

    elapsed, stuck, after, settled = 0.0, 0, None, []
    for half in (1, 2):
        threads = [threading.Thread(target=sequential, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=rand, args=(i + 10 * half,)) for i in range(2)]
        threads += [threading.Thread(target=mapped, args=(i + 10 * half,)) for i in range(2)]
        threads += [threading.Thread(target=shared, args=(i + 10 * half,)) for i in range(8)]
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=walker)]
        t0 = time.monotonic()
        end = t0 + seconds / 2
        for t in threads:
            t.daemon = True
            t.start()
        for t in threads:
            t.join(timeout=max(1, end - time.monotonic()) + 120)
        stuck += sum(t.is_alive() for t in threads)
        elapsed += time.monotonic() - t0
        after = after or proc_figures(pid)  # right after the first half, uploads pending
        settled.append(settle(m, pid))
        log("load: half %d done, daemon settled: %s" % (half, settled[-1]))
        if stuck:
            break
    os.close(shared_fd)
    res = {"seconds": round(elapsed, 1), "threads": len(threads), "wrong_reads": stats.wrong,
           "errors": stats.errors, "stuck_threads": stuck, "daemon_before": before,
           "daemon_after": after, "daemon_settled": settled, "ops": stats.summary(),
           "MiB_per_s": round(stats.bytes / MiB / elapsed, 1), "failures": []}
    if stats.wrong or stats.errors or stuck:
        res["failures"].append("%d wrong reads, %d errors, %d threads stuck: %s"
                               % (stats.wrong, len(stats.errors), stuck, stats.errors[:5]))
    if len(settled) == 2:
        res["failures"] += growth_failures(settled[0], settled[1])
    log("load: %s" % res)
    return res
