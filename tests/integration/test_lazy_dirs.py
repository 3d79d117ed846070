# SPDX-License-Identifier: GPL-2.0-or-later
"""Lazy directories (issue 16, "never stuck"): a linked directory is listed from its own
blocks, and one entry whose block no node has fails alone; a name in a big HAMT is found
through the shards on its path only; listings stream in batches, stay exactly-once across
single lookups, interrupted listings and restarts, and keep the daemon's memory bounded;
a slow directory does not hold up another; a find over hundreds of linked directories is
quick.

Big HAMTs come from dagtool (the project's own builder, whose directories equal a real
node's `add -r`), served by a test gateway straight from the CAR: a js-ipfs node takes about
90 s to import 100,000 entries; test_dagtool_hamt__a_real_node_lists_it shows a node reads
them. The 1,000,000-entry case is marked slow: PRSMFS_SLOW_TESTS=1 runs it."""
import errno
import json
import os
import shlex
import subprocess
import threading
import time

import dagpb
import pytest
from faultgw import FaultGateway
from mount import build_binary
from test_read_path import import_car, link, node_cfg, prsmctl, stats

MiB = 1 << 20


def gw_cfg(gw, **extra):
    cfg = {"rpc_nodes": [gw.url], "gateway_nodes": [], "timeout": 10}
    cfg.update(extra)
    return cfg


def hamt_blocks(tmp_path, n, leaves=1):
    """A HAMT directory of n entries file-0000000.. (entry i holds "<i % leaves>\\n") made by
    dagtool: (root CID, {CID: block})."""
    car = str(tmp_path / ("hamt-%d.car" % n))
    out = subprocess.run([build_binary("tests/support/dagtool"), "hamt", "--car", car,
                          "--leaves", str(leaves), str(n)], capture_output=True, text=True,
                         check=True, timeout=600)
    roots, blocks = dagpb.read_car(car)
    os.unlink(car)
    assert roots == [out.stdout.strip()]
    return roots[0], blocks


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def reset_hwm(pid):
    """Resets the peak RSS to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def unixfs_file_block(data):
    """A dag-pb UnixFS file node holding data (what js-ipfs makes of a small file)."""
    f = dagpb.field
    return f(1, 2, f(1, 0, 2) + f(2, 2, data) + f(3, 0, len(data)))


def raw_cid(data):
    import base64
    import hashlib

    b = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(b).decode().lower().rstrip("=")


@pytest.mark.timeout(300)
def test_unavailable_entry__siblings_listed_and_read__it_alone_eio_until_it_arrives(
        ipfs_node, mount_factory):
    alpha, beta = ipfs_node.add(b"alpha\n"), ipfs_node.add(b"beta\n")
    sub = dagpb.put(ipfs_node, dagpb.directory([(b"inner.txt", alpha, 14)]))
    late = unixfs_file_block(b"late\n")
    gone = dagpb.cid_v0(late)  # no node has it, for now
    raw = raw_cid(b"raw leaf\n")
    d = dagpb.put(ipfs_node, dagpb.directory([
        (b"alpha", alpha, 14), (b"beta", beta, 13), (b"gone", gone, len(late)),
        (b"raw", raw, 9), (b"sub", sub, 70)]))
    gw = FaultGateway(source=ipfs_node, blocks={raw: b"raw leaf\n"}).start()
    gw.missing.add(gone)
    try:
        m = mount_factory(config=gw_cfg(gw, timeout=5))
        link(m, d, "d")
        assert sorted(os.listdir(m.path("d"))) == ["alpha", "beta", "gone", "raw", "sub"]
        assert gw.served.get(raw, 0) == 0, "a raw entry is a file by its CID: never fetched"
        with open(m.path("d", "alpha"), "rb") as f:
            assert f.read() == b"alpha\n"
        with open(m.path("d", "raw"), "rb") as f:
            assert f.read() == b"raw leaf\n"
        with open(m.path("d", "sub", "inner.txt"), "rb") as f:
            assert f.read() == b"alpha\n"
        with pytest.raises(OSError) as e:
            os.stat(m.path("d", "gone"))
        assert e.value.errno == errno.EIO
        p = subprocess.run(["ls", "-l", m.path("d")], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 1, p  # "minor problems": one entry could not be read
        assert "gone" in p.stderr and "Input/output error" in p.stderr, p.stderr
        lines = {ln.split()[-1]: ln for ln in p.stdout.splitlines()[1:]}
        assert sorted(lines) == ["alpha", "beta", "gone", "raw", "sub"]
        assert lines["gone"].startswith("?") and lines["sub"].startswith("d"), p.stdout
        # its block arrives: the entry is a file like the others
        gw.missing.discard(gone)
        with gw.lock:
            gw.blocks[gone] = late
        time.sleep(1.2)  # the store fails a block that just failed at once for 1 s
        st = os.stat(m.path("d", "gone"))
        assert st.st_size == 5 and (st.st_mode & 0o170000) == 0o100000
        with open(m.path("d", "gone"), "rb") as f:
            assert f.read() == b"late\n"
        out = subprocess.run(["ls", "-l", m.path("d")], capture_output=True, text=True,
                             check=True, timeout=60).stdout
        assert "gone" in out
    finally:
        gw.stop()


def big_hamt_case(mount_factory, tmp_path, monkeypatch, n, max_rss_mib):
    """A HAMT of n entries: one name's stat fetches the shards on its path; `ls -U | head`
    answers after a few batches; after a restart in the middle of the listing, `ls -l` lists
    every name exactly once with the daemon's peak RSS growing less than max_rss_mib; then
    the listing comes from the index."""
    # ASan keeps 256 MiB of freed memory in quarantine: the peak would be its size
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") +
                       ":quarantine_size_mb=4:thread_local_quarantine_size_kb=256")
    t0 = time.monotonic()
    root, blocks = hamt_blocks(tmp_path, n, leaves=100)
    build_s = time.monotonic() - t0
    gw = FaultGateway(blocks=blocks).start()
    try:
        m = mount_factory(config=gw_cfg(gw, timeout=30))
        link(m, root, "big")
        # one name: the shards on its path (the root came with the link), not the directory
        before = gw.requests
        t0 = time.monotonic()
        st = os.stat(m.path("big", "file-0054321"))
        stat_s = time.monotonic() - t0
        assert st.st_size == 3
        with open(m.path("big", "file-0054321"), "rb") as f:
            assert f.read() == b"21\n"
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("big", "no-such-name"))
        path_fetches = gw.requests - before
        assert path_fetches <= 10, path_fetches  # depth <= 5 for these sizes, twice
        # the first names come before the directory is listed
        t0 = time.monotonic()
        head = subprocess.run("ls -U %s | head -n 3" % shlex.quote(m.path("big")), shell=True,
                              capture_output=True, text=True, timeout=120).stdout.split()
        head_s = time.monotonic() - t0
        head_fetches = gw.requests - before - path_fetches
        assert len(head) == 3 and all(h.startswith("file-") for h in head)
        assert head_fetches < len(blocks) // 4, head_fetches
        # a restart in the middle of a listing; then ls -l of everything, memory bounded
        m.restart()
        pid = m.proc.pid
        os.stat(m.path("big"))
        reset_hwm(pid)
        base_kib = vm_hwm_kib(pid)
        t0 = time.monotonic()
        out = subprocess.run("ls -l %s | wc -l" % shlex.quote(m.path("big")), shell=True,
                             capture_output=True, text=True, timeout=3600).stdout
        ls_l_s = time.monotonic() - t0
        grown_mib = (vm_hwm_kib(pid) - base_kib) / 1024
        assert int(out) == n + 1  # "total" and every entry once
        names = os.listdir(m.path("big"))
        assert len(names) == n and set(names) == {"file-%07d" % i for i in range(n)}
        print("\n%d-entry HAMT (%d blocks, built in %.0f s): stat %.2f s (%d fetches), "
              "ls -U | head %.2f s (%d fetches), ls -l %.1f s, daemon peak RSS +%.0f MiB"
              % (n, len(blocks), build_s, stat_s, path_fetches, head_s, head_fetches, ls_l_s,
                 grown_mib))
        assert grown_mib < max_rss_mib, grown_mib
        # known now: from the index, without the network
        before = gw.requests
        assert len(os.listdir(m.path("big"))) == n
        assert gw.requests == before
    finally:
        gw.stop()


@pytest.mark.timeout(900)
def test_big_hamt__stat_fetches_its_path__listing_streams_once_in_bounded_memory(
        mount_factory, tmp_path, monkeypatch):
    # ASan build: +78 and +170 MiB measured in two runs of the same commit (the kernel's
    # lookups after the entry timeout and ASan's allocator vary); the release build's figure
    # is in the note of the stop that added this (+25 to +31 MiB at 100k)
    big_hamt_case(mount_factory, tmp_path, monkeypatch, 100000, 400)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_million_entry_hamt__same_in_bounded_memory(mount_factory, tmp_path, monkeypatch):
    big_hamt_case(mount_factory, tmp_path, monkeypatch, 1000000, 640)


@pytest.mark.timeout(300)
def test_dagtool_hamt__a_real_node_lists_it(ipfs_node, tmp_path):
    """The big HAMTs above are dagtool's: a real node reads one like its own."""
    car = str(tmp_path / "h.car")
    root = subprocess.run([build_binary("tests/support/dagtool"), "hamt", "--car", car, "5000"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert import_car(ipfs_node, car) == root
    assert b"\x08\x05" in ipfs_node.block_get(root)  # UnixFS Type = HAMTShard
    listing = ipfs_node.rpc_json("ls", [("arg", root)], timeout=120)
    names = sorted(link["Name"] for link in listing["Objects"][0]["Links"])
    assert names == ["file-%07d" % i for i in range(5000)]


def make_tree_dirs(top, fan):
    """fan directories of fan subdirectories, each with two small files."""
    for i in range(fan):
        for j in range(fan):
            d = os.path.join(top, "d%02d" % i, "s%02d" % j)
            os.makedirs(d)
            for k in ("a", "b"):
                with open(os.path.join(d, k), "wb") as f:
                    f.write(b"%d %d %s\n" % (i, j, k.encode()))


@pytest.mark.timeout(600)
def test_find_over_812_linked_directories__quick(ipfs_node, mount_factory, tmp_path):
    src = str(tmp_path / "tree")
    make_tree_dirs(src, 28)  # 28 + 28 * 28 = 812 directories, 1568 files
    root = ipfs_node.add_dir(src)  # js-ipfs defaults: CIDv0, every file a dag-pb block
    m = mount_factory(config=node_cfg([ipfs_node]))
    link(m, root, "tree")
    t0 = time.monotonic()
    out = subprocess.run(["find", m.path("tree")], capture_output=True, text=True, check=True,
                         timeout=300).stdout.splitlines()
    find_s = time.monotonic() - t0
    assert len(out) == 1 + 812 + 1568
    t0 = time.monotonic()
    again = subprocess.run(["find", m.path("tree"), "-type", "f"], capture_output=True,
                           text=True, check=True, timeout=300).stdout.splitlines()
    print("\nfind over 812 linked directories: %.1f s cold, %.2f s warm" % (
        find_s, time.monotonic() - t0))
    assert len(again) == 1568
    assert find_s < 45, find_s


@pytest.mark.timeout(300)
def test_slow_directory__does_not_hold_up_another(ipfs_node, mount_factory):
    slow, x, y = ipfs_node.add(b"slow\n"), ipfs_node.add(b"x\n"), ipfs_node.add(b"y\n")
    a = dagpb.put(ipfs_node, dagpb.directory([(b"slow", slow, 13), (b"x", x, 10)]))
    b = dagpb.put(ipfs_node, dagpb.directory([(b"y", y, 10)]))
    gw = FaultGateway(source=ipfs_node).start()
    gw.delays[slow] = 6
    try:
        m = mount_factory(config=gw_cfg(gw, timeout=20, stall_timeout=15))
        link(m, a, "a")
        link(m, b, "b")
        got = {}
        t = threading.Thread(target=lambda: got.update(a=sorted(os.listdir(m.path("a")))))
        t.start()
        time.sleep(1)  # a's listing waits for "slow" now
        t0 = time.monotonic()
        assert os.listdir(m.path("b")) == ["y"]
        with open(m.path("b", "y"), "rb") as f:
            assert f.read() == b"y\n"
        b_s = time.monotonic() - t0
        t.join(60)
        assert got.get("a") == ["slow", "x"]
        assert b_s < 3, "b waited %.1f s for a's listing" % b_s
    finally:
        gw.stop()


@pytest.mark.timeout(300)
def test_change_below_partly_listed_directory__publish_lists_it_whole(ipfs_node, mount_factory,
                                                                     tmp_path):
    src = str(tmp_path / "d")
    os.makedirs(os.path.join(src, "sub"))
    for name in ("one", "two", "sub/three"):
        with open(os.path.join(src, name), "wb") as f:
            f.write(name.encode() + b"\n")
    opts = dict(cid_version=1, raw_leaves=True, cid_base="base32")  # the default profile's
    root = ipfs_node.add_dir(src, **opts)
    m = mount_factory(config=node_cfg([ipfs_node]))
    link(m, root, "d")
    assert os.getxattr(m.path("d"), "user.prsm.cid").decode() == root
    # d/sub is found by lookup (d is not listed); a file written below it changes d
    with open(m.path("d", "sub", "new"), "wb") as f:
        f.write(b"new\n")
    with pytest.raises(OSError) as e:
        os.getxattr(m.path("d"), "user.prsm.cid")
    assert e.value.errno == errno.ENODATA
    src_new = os.path.join(src, "sub", "new")
    with open(src_new, "wb") as f:
        f.write(b"new\n")
    want = ipfs_node.add_dir(src, only_hash=True, pin=False, **opts)
    assert json.loads(prsmctl("--json", "publish", m.path("d")).stdout)["cid"] == want
    assert sorted(os.listdir(m.path("d"))) == ["one", "sub", "two"]
    assert sorted(os.listdir(m.path("d", "sub"))) == ["new", "three"]
    assert stats(m)["fs"]["entries_skipped"] == 0
