# SPDX-License-Identifier: GPL-2.0-or-later
"""Model loading (issue 17) on real mounts against a real js-ipfs node: `prsmctl prefetch`
(warm-up into the disk cache, --check, --evict, --json, plain progress lines, a missing
block), prefetch_on_open, O(1) copies by copy_file_range (cp), partial copies that fall back
to a byte copy, and the read patterns of loaders: a 32-thread mmap fault storm and 8 threads
of pread on one fd."""
import base64
import ctypes
import hashlib
import json
import os
import random
import subprocess
import threading
import time

import pytest
from ipfsnode import free_ports
from mount import tool_binary

MiB = 1 << 20
CHUNK = 256 * 1024


def prsmctl(*args, check=True, timeout=120):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, "prsmctl %s: %s" % (" ".join(args), p.stderr)
    return p


def stats(m):
    return json.loads(prsmctl("status", m.mountpoint).stdout)["stats"]


def prefetch_json(*args):
    p = prsmctl("--json", "prefetch", *args)
    return json.loads(p.stdout)


def raw_leaf_cid(chunk):
    digest = hashlib.sha256(chunk).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


def add(node, data):
    return node.add(data, cid_version=1, raw_leaves=True, chunker="size-%d" % CHUNK,
                    cid_base="base32")


def link(m, cid, name):
    return json.loads(prsmctl("link", cid, m.path(name)).stdout)


def cfg(nodes, **extra):
    c = {"rpc_nodes": [n.api_url for n in nodes], "gateway_nodes": [], "timeout": 30,
         "prefetch_on_open": "off"}
    c.update(extra)
    return c


def behind_gateway(mount_factory, gw, latency_ms=0, **extra):
    """A mount whose only block source is the gateway gw (its RPC node is a dead port), which
    answers each block latency_ms late."""
    if latency_ms:
        gw.set_fault("latency", arg=latency_ms)
    c = {"rpc_nodes": ["http://127.0.0.1:%d" % free_ports(1)[0]], "gateway_nodes": [gw.url],
         "timeout": 30, "prefetch_on_open": "off"}
    allow = extra.pop("allow_stderr", ())
    c.update(extra)
    return mount_factory(config=c, allow_stderr=allow)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def net_fetches(m):
    s = stats(m)
    return s["net"]["fetches"], s["store"]["fetches"]


@pytest.mark.timeout(300)
def test_prefetch_linked_file_and_tree__reads_fetch_nothing__check_evict_json_plain_lines(
        ipfs_node, mount_factory, tmp_path):
    rnd = random.Random(17)
    big = rnd.randbytes(8 * MiB + 4321)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {"a.bin": rnd.randbytes(3 * MiB + 7), "sub/b.bin": rnd.randbytes(MiB + 1),
             "sub/small": b"small\n", "empty": b""}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    big_cid = add(ipfs_node, big)
    tree_cid = ipfs_node.add_dir(str(tree), cid_version=1, raw_leaves=True,
                                 chunker="size-%d" % CHUNK, cid_base="base32")
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, big_cid, "model.safetensors")
    link(m, tree_cid, "tree")

    before = prefetch_json("--check", m.path("model.safetensors"))
    assert before["mode"] == "check" and before["done"]
    assert before["bytes_total"] == len(big)
    assert before["bytes_cached"] < len(big)

    # not a terminal: plain lines, no carriage returns, a summary at the end
    p = prsmctl("prefetch", m.path("model.safetensors"), m.path("tree"))
    assert "\x1b[" not in p.stdout  # no redraws (text mode would hide a \r)
    assert p.stdout.strip().splitlines()[-1].startswith("prefetched: 5 files"), p.stdout

    after = prefetch_json("--check", m.path("model.safetensors"), m.path("tree"))
    total = len(big) + sum(len(d) for d in files.values())
    assert after["bytes_total"] == total and after["bytes_cached"] == total, after
    assert after["blocks_cached"] == after["blocks_total"] > 0
    assert after["files"] == 5 and after["errors_count"] == 0

    # every read is served from the cache: no fetch at all
    f0 = net_fetches(m)
    assert read(m.path("model.safetensors")) == big
    for name, data in files.items():
        assert read(m.path("tree", name)) == data
    assert net_fetches(m) == f0

    ev = prefetch_json("--evict", m.path("model.safetensors"))
    assert ev["mode"] == "evict" and ev["blocks_evicted"] >= len(big) // CHUNK
    gone = prefetch_json("--check", m.path("model.safetensors"))
    assert gone["bytes_cached"] == 0, gone
    # the tree's blocks stayed
    assert prefetch_json("--check", m.path("tree"))["bytes_cached"] == total - len(big)
    # on a terminal (script gives prsmctl a pty): a bar redrawn in place, rate and ETA
    out = subprocess.run(["script", "-qec", "%s prefetch %s" % (
        tool_binary("prsmctl"), m.path("model.safetensors")), "/dev/null"],
        capture_output=True, timeout=120)  # bytes: text mode would turn \r into \n
    tty = out.stdout.decode()
    assert out.returncode == 0, tty + out.stderr.decode()
    assert "\r\x1b[K[" in tty and "/s, " in tty, tty
    assert "prefetched: 1 files, 8.0 MiB: 8.0 MiB fetched" in tty, tty
    assert prefetch_json("--check", m.path("model.safetensors"))["bytes_cached"] == len(big)
    prefetch_json("--evict", m.path("model.safetensors"))
    again = prefetch_json(m.path("model.safetensors"))
    assert again["bytes_fetched"] == len(big) and again["errors_count"] == 0
    # (its layout came from the index this time: its root block was fetched all the same)
    full = prefetch_json("--check", m.path("model.safetensors"))
    assert full["blocks_cached"] == full["blocks_total"] and full["bytes_cached"] == len(big)


@pytest.mark.timeout(300)
def test_prefetch_block_missing__nonzero_exit_names_the_file(ipfs_node, mount_factory):
    from faultgw import FaultGateway

    data = os.urandom(2 * MiB)
    root = add(ipfs_node, data)
    gw = FaultGateway(source=ipfs_node).start()
    try:
        gw.missing.add(raw_leaf_cid(data[CHUNK:2 * CHUNK]))
        dead = "http://127.0.0.1:%d" % free_ports(1)[0]
        m = mount_factory(config={"rpc_nodes": [dead], "gateway_nodes": [gw.url],
                                  "timeout": 5, "prefetch_on_open": "off"},
                          allow_stderr=("Failed", "failed", "404", "not found"))
        link(m, root, "w.bin")
        link(m, add(ipfs_node, b"fine\n"), "ok.txt")
        p = prsmctl("prefetch", m.path("w.bin"), m.path("ok.txt"), check=False)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "w.bin" in p.stderr and "ok.txt" not in p.stderr
        st = json.loads(prsmctl("--json", "prefetch", m.path("w.bin"), check=False).stdout)
        assert st["errors_count"] == 1 and st["blocks_failed"] >= 1
        assert st["errors"][0]["path"] == "w.bin"
        assert st["bytes_done"] == len(data) - CHUNK
    finally:
        gw.stop()


@pytest.mark.timeout(300)
def test_prefetch_on_open__whole_file_fetched_in_background(ipfs_node, mount_factory):
    data = os.urandom(6 * MiB)
    m = mount_factory(config=cfg([ipfs_node], prefetch_on_open="*.gguf,*.safetensors",
                                 prefetch_on_open_min_size="1M"))
    link(m, add(ipfs_node, data), "w.gguf")
    link(m, add(ipfs_node, os.urandom(2 * MiB)), "other.dat")
    with open(m.path("other.dat"), "rb") as f:
        f.read(10)
    assert stats(m)["loading"]["prefetches_on_open"] == 0  # no glob matches
    with open(m.path("w.gguf"), "rb") as f:
        assert f.read(4096) == data[:4096]  # one small read: the job fetches the rest
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = prefetch_json("--check", m.path("w.gguf"))
            if st["bytes_cached"] == len(data):
                break
            time.sleep(0.2)
        assert st["bytes_cached"] == len(data), st
    assert stats(m)["loading"]["prefetches_on_open"] == 1
    f0 = net_fetches(m)
    assert read(m.path("w.gguf")) == data
    assert net_fetches(m) == f0


def wait_committed(path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return os.getxattr(path, "user.prsm.cid")
        except OSError:
            time.sleep(0.1)
    raise AssertionError("%s not uploaded within %d s" % (path, timeout))


@pytest.mark.timeout(300)
def test_cp_within_mount__o1_link__same_cid__independent__survives_restart(
        ipfs_node, mount_factory):
    data = os.urandom(24 * MiB + 5)
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, add(ipfs_node, data), "src.safetensors")
    s0 = stats(m)
    t0 = time.monotonic()
    subprocess.run(["cp", m.path("src.safetensors"), m.path("dst.safetensors")], check=True)
    print("cp of %d bytes within the mount: %.3f s" % (len(data), time.monotonic() - t0))
    subprocess.run(["cp", "--reflink=auto", m.path("src.safetensors"), m.path("auto")],
                   check=True)
    elapsed = time.monotonic() - t0
    s1 = stats(m)
    src_cid = os.getxattr(m.path("src.safetensors"), "user.prsm.cid")
    assert os.getxattr(m.path("dst.safetensors"), "user.prsm.cid") == src_cid
    assert os.getxattr(m.path("auto"), "user.prsm.cid") == src_cid
    assert s1["loading"]["copies_linked"] - s0["loading"]["copies_linked"] == 2
    # no byte moved: nothing fetched, nothing uploaded, nothing read through the mount
    assert s1["net"]["fetches"] == s0["net"]["fetches"]
    assert s1["loading"]["uploads_committed"] == s0["loading"]["uploads_committed"]
    assert s1["fs"]["read_bytes"] == s0["fs"]["read_bytes"]
    assert elapsed < 10, elapsed
    # FICLONE never reaches a FUSE daemon: --reflink=always fails, as documented
    p = subprocess.run(["cp", "--reflink=always", m.path("src.safetensors"), m.path("clone")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "Operation not supported" in p.stderr, p.stderr
    assert read(m.path("dst.safetensors")) == data

    # independent afterwards: a write to either side leaves the other as it was
    with open(m.path("dst.safetensors"), "r+b") as f:
        f.seek(100)
        f.write(b"DST")
    with open(m.path("src.safetensors"), "r+b") as f:
        f.seek(MiB)
        f.write(b"SRC")
    dst_data = data[:100] + b"DST" + data[103:]
    src_data = data[:MiB] + b"SRC" + data[MiB + 3:]
    assert read(m.path("dst.safetensors")) == dst_data
    assert read(m.path("src.safetensors")) == src_data
    assert read(m.path("auto")) == data
    wait_committed(m.path("dst.safetensors"))
    wait_committed(m.path("src.safetensors"))
    m.restart()
    assert read(m.path("dst.safetensors")) == dst_data
    assert read(m.path("src.safetensors")) == src_data
    assert read(m.path("auto")) == data
    assert os.getxattr(m.path("auto"), "user.prsm.cid") == src_cid


@pytest.mark.timeout(300)
def test_copy_file_range__partial_and_staged_sources_fall_back__byte_exact(
        ipfs_node, mount_factory):
    data = os.urandom(3 * MiB + 77)
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, add(ipfs_node, data), "src")
    before = stats(m)["loading"]["copies_linked"]
    fi = os.open(m.path("src"), os.O_RDONLY)
    fo = os.open(m.path("part"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = 0
        while done < 100000:
            n = os.copy_file_range(fi, fo, 100000 - done, 12345 + done, done)
            assert n > 0
            done += n
    finally:
        os.close(fi)
        os.close(fo)
    assert read(m.path("part")) == data[12345:12345 + 100000]
    assert stats(m)["loading"]["copies_linked"] == before
    # a source still being written (open, dirty) is copied by its bytes
    fresh = os.urandom(MiB + 3)
    with open(m.path("fresh"), "wb") as f:
        f.write(fresh)
        f.flush()
        subprocess.run(["cp", m.path("fresh"), m.path("fresh-copy")], check=True)
    assert read(m.path("fresh-copy")) == fresh
    # and a whole copy into a destination that has content is a byte copy too
    with open(m.path("full"), "wb") as f:
        f.write(b"x" * 10)
    fi = os.open(m.path("src"), os.O_RDONLY)
    fo = os.open(m.path("full"), os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            n = os.copy_file_range(fi, fo, len(data) - done, done, done)
            assert n > 0
            done += n
    finally:
        os.close(fi)
        os.close(fo)
    assert read(m.path("full")) == data


libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


@pytest.mark.timeout(300)
def test_mmap_fault_storm__32_threads_random_pages_of_a_cold_file__exact(
        ipfs_node, mount_factory):
    """32 threads fault random pages of one mapping at once (ctypes.memmove releases the GIL:
    the faults are really concurrent); every page is exact and every thread ends."""
    size = 32 * MiB + 1000
    data = os.urandom(size)
    m = mount_factory(config=cfg([ipfs_node]), options=["max_threads=8"])
    link(m, add(ipfs_node, data), "storm.bin")
    fd = os.open(m.path("storm.bin"), os.O_RDONLY)
    addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
    assert addr not in (None, ctypes.c_void_p(-1).value)
    bad, finished = [], []

    def fault(seed):
        rnd = random.Random(seed)
        buf = ctypes.create_string_buffer(4096)
        for _ in range(64):
            off = rnd.randrange(0, size - 4096) & ~4095
            ctypes.memmove(buf, addr + off, 4096)
            if buf.raw != data[off:off + 4096]:
                bad.append(off)
        finished.append(seed)

    threads = [threading.Thread(target=fault, args=(i,)) for i in range(32)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(finished) == 32, "stuck faulting threads"
        assert not bad
    finally:
        libc.munmap(addr, size)
        os.close(fd)


@pytest.mark.timeout(300)
def test_pread_8_threads_one_fd__exact(ipfs_node, mount_factory):
    size = 24 * MiB + 999
    data = os.urandom(size)
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, add(ipfs_node, data), "p.bin")
    fd = os.open(m.path("p.bin"), os.O_RDONLY)
    bad, finished = [], []

    def reader(seed):
        rnd = random.Random(seed)
        for _ in range(16):
            off = rnd.randrange(0, size)
            n = rnd.choice([4096, 65536, MiB, 4 * MiB])
            if os.pread(fd, n, off) != data[off:off + n]:
                bad.append((off, n))
        finished.append(seed)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(finished) == 8 and not bad
    finally:
        os.close(fd)


@pytest.mark.timeout(300)
def test_pread_8_threads_one_fd__block_fetches_overlap_at_the_source(ipfs_node, mount_factory):
    """Parallel preads on one fd are not serialised (Kubo's /ipfs handle and hf-mount were):
    8 threads pread 8 blocks far apart (no readahead: a stream not at offset 0) through a
    gateway that answers each block 1 s late; the gateway sees them at once (7 of 8 seen
    here; serialised reads would show 1)."""
    from faultgw import FaultGateway

    data = os.urandom(128 * CHUNK)
    root = add(ipfs_node, data)
    gw = FaultGateway(source=ipfs_node).start()
    try:
        m = behind_gateway(mount_factory, gw)
        link(m, root, "par.bin")
        gw.set_fault("latency", arg=1000)
        fd = os.open(m.path("par.bin"), os.O_RDONLY)
        offs = [(8 + 15 * i) * CHUNK for i in range(8)]  # one leaf each, 15 leaves apart
        start = threading.Barrier(8)
        got = {}

        def reader(off):
            start.wait()
            got[off] = os.pread(fd, CHUNK, off)

        threads = [threading.Thread(target=reader, args=(o,)) for o in offs]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        finally:
            os.close(fd)
        assert all(got.get(o) == data[o:o + CHUNK] for o in offs)
        assert gw.max_in_flight >= 5, gw.max_in_flight  # 1 if one fetch waited for another
    finally:
        gw.clear_faults()
        gw.stop()


def thread_nices(pid):
    """The nice values of process pid's threads, by thread name."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                nice = int(f.read().rsplit(")", 1)[1].split()[16])
        except OSError:
            continue  # the thread ended meanwhile
        out.setdefault(name, set()).add(nice)
    return out


@pytest.mark.timeout(300)
def test_prefetch_slow_node__on_open_job_stops_at_close__unmount_ends_a_running_job(
        ipfs_node, mount_factory):
    """Behind a gateway that takes 500 ms per block: a prefetch_on_open job's threads run
    niced while the daemon's others do not, the job stops fetching once the file is closed,
    and an unmount while `prsmctl prefetch` runs ends promptly and
    cleanly (the job is cancelled, its fetches end)."""
    from faultgw import FaultGateway

    data = os.urandom(64 * CHUNK)
    root = add(ipfs_node, data)
    gw = FaultGateway(source=ipfs_node).start()
    p = None
    try:
        m = behind_gateway(mount_factory, gw, latency_ms=500, prefetch_on_open="*.gguf",
                           prefetch_on_open_min_size=0)
        link(m, root, "slow.gguf")
        with open(m.path("slow.gguf"), "rb") as f:
            assert f.read(10) == data[:10]
            time.sleep(1)
            # the job's threads run niced (thread.h), the daemon's others at its priority
            nices = thread_nices(m.proc.pid)
        base = os.getpriority(os.PRIO_PROCESS, m.proc.pid)
        assert nices["prsmfs-prefetch"] == {min(base + 10, 19)}, nices
        assert nices["prsmfs-pf-walk"] == {min(base + 10, 19)}, nices
        assert nices["prsmfs-readahd"] == {base} and nices["prsmfs-net"] == {base}, nices
        closed = gw.requests
        time.sleep(3)  # what was asked for before the close (fetchers, readahead) ends
        settled = gw.requests
        time.sleep(4)
        # a job going on would ask for 32 more in these 4 s (4 fetchers, 500 ms a block); a
        # bound on what was in flight at the close (once 12, then 13 seen) measured timing
        assert gw.requests - settled <= 2, (closed, settled, gw.requests)
        assert stats(m)["loading"]["prefetches_on_open"] == 1

        prefetch_json("--evict", m.path("slow.gguf"))  # 64 blocks to fetch, 8 at a time
        p = subprocess.Popen([tool_binary("prsmctl"), "prefetch", m.path("slow.gguf")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert p.poll() is None  # still fetching
        t0 = time.monotonic()
        m.stop()  # fails the test if the daemon hangs, crashes or reports a leak
        assert time.monotonic() - t0 < 10
        out, _ = p.communicate(timeout=30)
        assert p.returncode != 0  # the daemon went away mid-job
        # not a terminal: a plain progress line a second, bytes, rate and ETA, no redraws
        lines = [ln for ln in out.splitlines() if ln.startswith("prefetch: ")]
        assert lines and "\x1b[" not in out, out
        assert " / 16.0 MiB (" in lines[0] and "/s, ETA " in lines[0], out
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        gw.clear_faults()
        gw.stop()


@pytest.mark.timeout(300)
def test_cp_of_an_uploaded_file__pin_follows_the_copy__unpinned_after_both_go(
        ipfs_nodes_factory, mount_factory):
    """Pins follow the namespace: the root prsmfs pinned for a written file stays pinned while
    its O(1) copy has it, after the original is removed, and is unpinned once both are gone."""
    from mount import fsync_path

    (node,) = ipfs_nodes_factory(1)

    def pins():
        res = node.rpc_json("pin/ls", [("type", "recursive"), ("cid-base", "base32")],
                            timeout=60)
        return set((res or {}).get("Keys") or {})

    m = mount_factory(config=cfg([node]))
    data = os.urandom(3 * MiB + 11)
    with open(m.path("w.pt"), "wb") as f:
        f.write(data)
    fsync_path(m.path("w.pt"))  # uploaded and pinned
    root = os.getxattr(m.path("w.pt"), "user.prsm.cid").decode()
    assert root in pins()
    subprocess.run(["cp", m.path("w.pt"), m.path("copy.pt")], check=True)
    assert os.getxattr(m.path("copy.pt"), "user.prsm.cid").decode() == root
    assert stats(m)["loading"]["copies_linked"] == 1
    os.unlink(m.path("w.pt"))
    time.sleep(1)
    st = stats(m)["pins"]
    assert st["owed"] == 0 and st["unpins"] == 0, st
    assert root in pins()
    assert read(m.path("copy.pt")) == data
    os.unlink(m.path("copy.pt"))
    deadline = time.monotonic() + 60
    while root in pins() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert root not in pins()
    assert stats(m)["pins"]["unpins"] == 1


@pytest.mark.timeout(300)
def test_cp_of_a_staged_file__upload_pending__bytes_copied_exact(mount_factory):
    """A file closed but not uploaded (its only node is down) is copied by its bytes: the copy
    reads back exact, and neither file names a CID yet."""
    dead = "http://127.0.0.1:%d" % free_ports(1)[0]
    m = mount_factory(config={"rpc_nodes": [dead], "gateway_nodes": [], "timeout": 5,
                              "prefetch_on_open": "off"})
    data = os.urandom(2 * MiB + 9)
    with open(m.path("staged.bin"), "wb") as f:
        f.write(data)
    subprocess.run(["cp", m.path("staged.bin"), m.path("copy.bin")], check=True)
    assert read(m.path("copy.bin")) == data
    assert stats(m)["loading"]["copies_linked"] == 0
    for name in ("staged.bin", "copy.bin"):
        with pytest.raises(OSError):
            os.getxattr(m.path(name), "user.prsm.cid")
    with open(m.path("staged.bin"), "r+b") as f:
        f.write(b"changed")
    assert read(m.path("copy.bin")) == data


@pytest.mark.timeout(300)
def test_cp_of_a_file_whose_root_block_was_evicted__linked_on_a_metadata_thread(
        ipfs_node, mount_factory):
    """A file read once (its layout is in the index) and then evicted opens without its root
    block; the copy needs it, so the FUSE worker hands the copy to a metadata thread, which
    fetches the root and links: same CID, exact bytes."""
    data = os.urandom(4 * MiB + 3)
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, add(ipfs_node, data), "src.pt")
    assert read(m.path("src.pt")) == data  # the layout is stored at the close
    assert prefetch_json("--evict", m.path("src.pt"))["blocks_evicted"] >= 17
    before = stats(m)
    subprocess.run(["cp", m.path("src.pt"), m.path("dst.pt")], check=True)
    after = stats(m)
    assert after["loading"]["copies_linked"] == before["loading"]["copies_linked"] + 1
    assert after["store"]["fetches"] == before["store"]["fetches"] + 1  # the root block only
    assert os.getxattr(m.path("dst.pt"), "user.prsm.cid") == \
        os.getxattr(m.path("src.pt"), "user.prsm.cid")
    assert read(m.path("dst.pt")) == data
