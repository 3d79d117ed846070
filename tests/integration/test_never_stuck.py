# SPDX-License-Identifier: GPL-2.0-or-later
"""Never stuck (issue 16): requests that wait for an upload keep no FUSE worker, have one
bound (fsync_timeout) and end at an interrupt; stat and ls answer meanwhile."""
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from ipfsnode import free_ports
from mount import fsync_path


def dead_url():
    """An RPC node nothing listens on: uploads to it stay pending."""
    return "http://127.0.0.1:%d" % free_ports(1)[0]


@contextlib.contextmanager
def behind_gateway(ipfs_node, mount_factory, size, chunk, **config):
    """Random content of size bytes added to the node (chunks of chunk bytes), a fault gateway
    in front of the node, and a mount reading only through it (its RPC node is dead):
    yields (data, root CID, gateway, mount)."""
    from faultgw import FaultGateway

    data = os.urandom(size)
    root = ipfs_node.add(data, cid_version=1, raw_leaves=True, chunker="size-%d" % chunk,
                         cid_base="base32")
    gw = FaultGateway(source=ipfs_node).start()
    try:
        cfg = {"rpc_nodes": [dead_url()], "gateway_nodes": [gw.url]}
        cfg.update(config)
        yield data, root, gw, mount_factory(config=cfg)
    finally:
        gw.clear_faults()
        gw.stop()


def random_cid():
    """A CIDv1 (raw, sha256) of random bytes: a block no node has."""
    import base64
    import hashlib

    digest = hashlib.sha256(os.urandom(32)).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


FSYNC_CHILD = ("import os, sys\n"
               "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
               "print('fsyncing', flush=True)\n"
               "try:\n"
               "    os.fsync(fd)\n"
               "    print('ok', flush=True)\n"
               "except OSError as e:\n"
               "    print(e.errno, flush=True)\n")


@pytest.mark.timeout(300)
def test_fsync_all_nodes_down__eio_within_its_bound__stat_ls_answer__data_kept(
        ipfs_node, mount_factory):
    """8 fsyncs wait for uploads to a dead node (more than max_threads=4 workers): stat and ls
    of the mount answer meanwhile, each fsync ends with EIO at fsync_timeout, the data stays
    readable and is uploaded once a node answers."""
    m = mount_factory(config={"rpc_nodes": [dead_url()], "gateway_nodes": [], "timeout": 10,
                              "fsync_timeout": 4},
                      options=["max_threads=4"])
    for i in range(8):
        with open(m.path("f%d" % i), "wb") as f:
            f.write(b"data %d\n" % i)
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", FSYNC_CHILD, m.path("f%d" % i)],
                              stdout=subprocess.PIPE, text=True) for i in range(8)]
    t0 = time.monotonic()
    for p in procs:
        assert p.stdout.readline() == "fsyncing\n"
    time.sleep(0.5)  # the fsyncs are waiting now
    for i in range(20):
        s0 = time.monotonic()
        os.stat(m.path("f%d" % (i % 8)))
        assert "f3" in os.listdir(m.mountpoint)
        assert time.monotonic() - s0 < 2.0  # no worker is taken by the waits
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert out.strip() == str(errno.EIO), out
    assert time.monotonic() - t0 < 30
    assert "not pinned within fsync_timeout" in m.stderr()
    for i in range(8):
        with open(m.path("f%d" % i), "rb") as f:
            assert f.read() == b"data %d\n" % i
    # a node that answers: the queued uploads complete
    m.stop()
    m.config["rpc_nodes"] = [ipfs_node.api_url]
    m.start()
    for i in range(8):
        fsync_path(m.path("f%d" % i))
        assert os.getxattr(m.path("f%d" % i), "user.prsm.cid")


@pytest.mark.timeout(120)
def test_fsync_caller_killed__returns_at_once__sigterm_unmounts_promptly(mount_factory):
    """A SIGKILLed fsync caller does not stay in D state (the INTERRUPT ends its wait), and
    SIGTERM with fsyncs pending unmounts within 5 s, losing nothing closed."""
    hung = socket.socket()  # a gateway that takes connections and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    m = mount_factory(config={"rpc_nodes": [dead_url()],
                              "gateway_nodes": ["http://127.0.0.1:%d" % hung.getsockname()[1]],
                              "timeout": 60, "fsync_timeout": 600})
    with open(m.path("f"), "wb") as f:
        f.write(b"kept\n")
    p = subprocess.Popen(["/usr/bin/python3", "-c", FSYNC_CHILD, m.path("f")],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "fsyncing\n"
    time.sleep(0.5)
    t0 = time.monotonic()
    p.kill()
    p.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    # Ctrl-C of a blocked caller: the wait ends at once (EINTR; Python's handler raises)
    p = subprocess.Popen(["/usr/bin/python3", "-c", FSYNC_CHILD.replace(
        "except OSError", "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
        "except OSError"), m.path("f")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "fsyncing\n"
    time.sleep(0.5)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=10)
    assert out.strip() == "interrupted", out
    assert time.monotonic() - t0 < 5
    waiting = [subprocess.Popen(["/usr/bin/python3", "-c", FSYNC_CHILD, m.path("f")],
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for w in waiting:
        assert w.stdout.readline() == "fsyncing\n"
    # and 8 reads of content no node can give (each waits for the network's timeout)
    readers = [subprocess.Popen(["cat", m.path(".ipfs", random_cid())],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(8)]
    time.sleep(1)
    assert [r.poll() for r in readers] == [None] * 8  # waiting for the network
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    for w in waiting + readers:
        w.communicate(timeout=10)
    assert "answered EIO at shutdown" in m.stderr()
    assert "upload(s) pending: they resume at the next start" in m.stderr()
    hung.close()
    m.stop()
    m.start()
    with open(m.path("f"), "rb") as f:
        assert f.read() == b"kept\n"


@pytest.mark.timeout(300)
def test_slow_gateway__each_read_within_one_timeout(ipfs_node, mount_factory):
    """A gateway sending 90 kB/s per request (a 256 KiB block in about 3 s, within the 4 s
    timeout): a 1 MiB read() of four blocks fetches them together and ends within `timeout`
    plus a little (it took four blocks' times one after another, each with a deadline of
    its own); then at 8 KiB/s, where no block can come in time, it fails (EIO) as soon."""
    with behind_gateway(ipfs_node, mount_factory, 4 << 20, 262144, timeout=4) as (data, root,
                                                                                  gw, m):
        path = m.path(".ipfs", root)
        assert os.stat(path).st_size == len(data)  # the root block, at full speed
        gw.set_fault("bandwidth", arg=90000)
        fd = os.open(path, os.O_RDONLY)
        try:
            for off in (1 << 20, 3 << 20):
                t0 = time.monotonic()
                assert os.pread(fd, 1 << 20, off) == data[off:off + (1 << 20)]
                elapsed = time.monotonic() - t0
                print("read at %d MiB: %.1f s" % (off >> 20, elapsed))
                assert elapsed < 4 + 3, elapsed
            gw.clear_faults()
            gw.set_fault("bandwidth", arg=8192)
            t0 = time.monotonic()
            # at offset 0: the reads above were sequential enough for readahead to have
            # fetched what follows them, never what precedes them
            with pytest.raises(OSError) as e:
                os.pread(fd, 1 << 20, 0)
            assert e.value.errno == errno.EIO
            assert time.monotonic() - t0 < 4 + 3
        finally:
            os.close(fd)
        # the daemon's own figure (the faults campaign's bound): its longest read request,
        # from arrival to answer, waited for the slow gateway and no longer than timeout
        from mount import tool_binary
        st = subprocess.run([tool_binary("prsmctl"), "status", "--json", m.mountpoint],
                            capture_output=True, text=True, timeout=60)
        waited = json.loads(st.stdout)["stats"]["fs"]["read_wait_max_ms"]
        assert 1000 < waited < (4 + 3) * 1000, st.stdout


@pytest.mark.timeout(300)
def test_stat_of_a_file_being_appended_to_never_waits_for_a_download(ipfs_node, mount_factory):
    """A writer reading its file's old content from a slow node holds that file's writer;
    stat of the file (its size and mtime as the writer has them) answers meanwhile."""
    from mount import tool_binary

    with behind_gateway(ipfs_node, mount_factory, 2 << 20, 1 << 20, timeout=30,
                        stall_timeout=20) as (data, root, gw, m):
        p = subprocess.run([tool_binary("prsmctl"), "link", root, m.path("f")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        gw.set_fault("latency", arg=6000)  # each block 6 s away
        fd = os.open(m.path("f"), os.O_RDWR)
        try:
            os.pwrite(fd, b"tail", len(data))  # the writer: its base is the CID
            got = []
            t = threading.Thread(target=lambda: got.append(os.pread(fd, 1 << 20, 0)))
            t.start()  # reads the old content through the writer: 6 s
            time.sleep(1.5)  # past the kernel's attribute cache
            t0 = time.monotonic()
            st = os.stat(m.path("f"))
            elapsed = time.monotonic() - t0
            assert st.st_size == len(data) + 4
            assert elapsed < 2, elapsed
            t.join(60)
            assert got == [data[:1 << 20]]
        finally:
            gw.clear_faults()
            os.close(fd)


def test_nonempty_mount_point__refused_unless_asked(ipfs_node, mount_factory):
    from mount import DaemonFailure

    m = mount_factory(config={"rpc_nodes": [ipfs_node.api_url], "gateway_nodes": []},
                      start=False)
    with open(os.path.join(m.mountpoint, "hidden-if-mounted"), "w") as f:
        f.write("x")
    with pytest.raises(DaemonFailure) as e:
        m.start()
    m.proc = None
    assert "is not empty" in str(e.value) and "-o nonempty" in str(e.value)
    m.options.append("nonempty")
    m.start()
    assert os.listdir(m.mountpoint) == []
    m.stop()
    assert os.listdir(m.mountpoint) == ["hidden-if-mounted"]


@pytest.mark.timeout(180)
def test_ctrl_c_of_a_blocked_read__returns_at_once(ipfs_node, mount_factory):
    """Ctrl-C of a reader waiting on a hung gateway: through the page cache (cat) and with
    O_DIRECT (dd iflag=direct, whose wait only the daemon's answer ends: the INTERRUPT)."""
    with behind_gateway(ipfs_node, mount_factory, 3 << 20, 1 << 20, timeout=60,
                        stall_timeout=50) as (data, root, gw, m):
        path = m.path(".ipfs", root)
        os.stat(path)
        gw.set_fault("hang")
        for cmd in (["cat", path],
                    ["dd", "if=" + path, "of=/dev/null", "bs=1M", "iflag=direct"]):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            assert p.poll() is None  # waiting for the hung gateway
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
            assert time.monotonic() - t0 < 2, cmd
        gw.clear_faults()
        with open(path, "rb") as f:  # the mount still serves
            assert f.read() == data


@pytest.mark.timeout(180)
def test_ctrl_c_of_a_blocked_lookup_open_or_listing__returns_at_once(ipfs_node, mount_factory,
                                                                     tmp_path):
    """Ctrl-C of processes whose lookup (of a CID in .ipfs/), open (of a file whose root block
    is not cached) or listing (of a linked directory) waits on a hung gateway: each leaves at
    once (the request is answered EINTR), and the mount serves them after."""
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"in a linked tree\n" * 1000)
    tree = ipfs_node.add_dir(str(src))
    with behind_gateway(ipfs_node, mount_factory, 2 << 20, 1 << 20, timeout=60,
                        stall_timeout=50, first_byte_timeout=50) as (data, root, gw, m):
        other = ipfs_node.add(b"not looked up yet\n" * 100)
        f = m.path(".ipfs", root)
        os.stat(f)  # its entry (a file of 2 leaves); the open needs its root block again?
        os.stat(m.path(".ipfs", tree))
        gw.set_fault("hang")
        cases = [["cat", m.path(".ipfs", other)],  # lookup: the root block
                 ["ls", m.path(".ipfs", tree, "sub")],  # lookup in a lazy directory
                 ["ls", m.path(".ipfs", tree)]]  # a listing batch
        for cmd in cases:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            assert p.poll() is None, cmd  # waiting for the hung gateway
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
            assert time.monotonic() - t0 < 2, cmd
        gw.clear_faults()
        with open(m.path(".ipfs", other), "rb") as g:
            assert g.read() == b"not looked up yet\n" * 100
        assert os.listdir(m.path(".ipfs", tree)) == ["sub"]
        with open(f, "rb") as g:
            assert g.read() == data


def raw_cid(data):
    """The CIDv1 (raw, sha256, base32) of a raw leaf, as prsmfs asks gateways for it."""
    import base64
    import hashlib

    digest = hashlib.sha256(data).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


@pytest.mark.timeout(300)
def test_interrupted_reads__stop_waiting__other_reads_answered_at_once(ipfs_node, mount_factory):
    """40 direct reads of blocks a gateway holds back for 100 s are interrupted: each returns
    at once, and their reader threads stop waiting, so a read of another block is answered at
    once (without that, the 32 reader threads would wait out the 100 s first). The 8 reads
    still queued when interrupted are answered EINTR as their thread takes them up, and their
    files may be released before that thread is done: under ASan this once caught a
    use-after-free of the released file (about 1 run in 10, before reads held the handle)."""
    chunk = 256 << 10
    # connections enough for every read at once, and readahead on one connection: what is
    # measured is the reader threads, not the connections the held-back fetches occupy
    with behind_gateway(ipfs_node, mount_factory, 48 * chunk, chunk, timeout=120,
                        stall_timeout=110, first_byte_timeout=110, parallel_downloads=1,
                        connection_pool_size=128) as (data, root, gw, m):
        path = m.path(".ipfs", root)
        os.stat(path)  # its root block: not held back
        with gw.lock:
            gw.delays.update({raw_cid(data[i * chunk:(i + 1) * chunk]): 100 for i in range(40)})
        readers = [subprocess.Popen(["dd", "if=" + path, "of=/dev/null", "bs=256K", "count=1",
                                     "skip=%d" % i, "iflag=direct"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(40)]
        time.sleep(3)
        assert [r.poll() for r in readers] == [None] * 40  # all held back
        t0 = time.monotonic()
        for r in readers:
            r.send_signal(signal.SIGINT)
        for r in readers:
            r.wait(timeout=30)
        assert time.monotonic() - t0 < 3
        t0 = time.monotonic()
        p = subprocess.run(["dd", "if=" + path, "bs=256K", "count=1", "skip=44", "iflag=direct"],
                           capture_output=True, timeout=110)
        elapsed = time.monotonic() - t0
        assert p.returncode == 0, p.stderr
        assert p.stdout == data[44 * chunk:45 * chunk]
        print("a read after 40 interrupted ones: %.2f s" % elapsed)
        assert elapsed < 10


@pytest.mark.timeout(300)
def test_64_reads_of_unreachable_blocks_and_8_fsyncs__stat_and_ls_answer(ipfs_node,
                                                                        mount_factory):
    """64 direct reads waiting on a hung gateway and 8 fsyncs waiting on a dead node, with
    FUSE's default 16 workers: stat and ls of indexed paths answer at once all along (reads
    that must fetch are done by reader threads, fsyncs by no thread), and once the gateway
    answers every read gets its bytes."""
    with behind_gateway(ipfs_node, mount_factory, 64 << 20, 1 << 20, timeout=120,
                        stall_timeout=100, first_byte_timeout=100,
                        fsync_timeout=600) as (data, root, gw, m):
        from mount import tool_binary

        p = subprocess.run([tool_binary("prsmctl"), "link", root, m.path("model")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        for i in range(8):
            with open(m.path("w%d" % i), "wb") as f:
                f.write(b"pending %d\n" % i)
        gw.set_fault("hang")
        readers = [subprocess.Popen(["dd", "if=" + m.path("model"), "of=/dev/null", "bs=1M",
                                     "count=1", "skip=%d" % i, "iflag=direct"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                   for i in range(64)]
        fsyncs = [subprocess.Popen(["/usr/bin/python3", "-c", FSYNC_CHILD, m.path("w%d" % i)],
                                   stdout=subprocess.PIPE, text=True) for i in range(8)]
        for p in fsyncs:
            assert p.stdout.readline() == "fsyncing\n"
        time.sleep(2)
        assert [r.poll() for r in readers] == [None] * 64  # all waiting for the gateway
        worst = 0.0
        for i in range(30):
            t0 = time.monotonic()
            os.stat(m.path("w%d" % (i % 8)))
            assert sorted(os.listdir(m.mountpoint))[0] == "model"
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        print("slowest stat+ls while 64 reads and 8 fsyncs wait: %.3f s" % worst)
        assert worst < 1.0
        gw.clear_faults()
        for r in readers:
            _, err = r.communicate(timeout=120)
            assert r.returncode == 0, err
        for p in fsyncs:
            p.kill()
            p.wait(timeout=10)


@pytest.mark.timeout(300)
def test_lookups_listings_and_opens_that_must_fetch__keep_no_fuse_worker(ipfs_node,
                                                                         mount_factory,
                                                                         tmp_path):
    """40 processes waiting on a hung gateway in listings of, and lookups and opens in, a
    linked tree (more than FUSE's workers): stat and ls of what the index holds answer at
    once all along, and each process gets its answer once the gateway answers."""
    from faultgw import FaultGateway
    from mount import tool_binary

    src = tmp_path / "tree"
    for i in range(40):
        d = src / ("d%02d" % i)
        d.mkdir(parents=True)
        (d / "f").write_bytes(b"file %d\n" % i * 1000)
    root = ipfs_node.add_dir(str(src))  # CIDv0: each file's type is in its own block
    gw = FaultGateway(source=ipfs_node).start()
    try:
        m = mount_factory(config={"rpc_nodes": [dead_url()], "gateway_nodes": [gw.url],
                                  "timeout": 120, "stall_timeout": 100,
                                  "first_byte_timeout": 100})
        p = subprocess.run([tool_binary("prsmctl"), "link", root, m.path("t")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert len(os.listdir(m.path("t"))) == 40  # the d%02d blocks come; no file's yet
        with open(m.path("local"), "wb") as f:
            f.write(b"indexed\n")
        gw.set_fault("hang")
        procs = [subprocess.Popen(["ls", m.path("t", "d%02d" % i)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(20)]
        procs += [subprocess.Popen(["cat", m.path("t", "d%02d" % i, "f")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                  for i in range(20, 40)]
        time.sleep(2)
        assert [q.poll() for q in procs] == [None] * 40  # all waiting for the gateway
        worst = 0.0
        for i in range(30):
            t0 = time.monotonic()
            assert os.stat(m.path("local")).st_size == 8
            assert len(os.listdir(m.path("t"))) == 40
            assert "local" in os.listdir(m.mountpoint)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        print("slowest stat+ls while 40 lookups, listings and opens wait: %.3f s" % worst)
        assert worst < 1.0
        gw.clear_faults()
        for i, q in enumerate(procs):
            out, err = q.communicate(timeout=180)
            assert q.returncode == 0, err
            assert out == (b"f\n" if i < 20 else b"file %d\n" % i * 1000)
    finally:
        gw.clear_faults()
        gw.stop()
