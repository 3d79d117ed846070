# SPDX-License-Identifier: GPL-2.0-or-later
"""POSIX details a conformance run against the mount found (issue 15), on real mounts:
O_TRUNC marks mtime and ctime, setgid directories hand down their group (and the bit, to
subdirectories), times before 1970 and after 2262 read back exactly, and FIFOs, sockets and
device nodes live in the index like other inodes (publish skips them)."""
import calendar
import ctypes
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
from ipfsnode import free_ports
from mount import tool_binary
from test_metrics import metrics_cfg, scrape, value


def cfg(node):
    return {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}


def wait_uploaded(path):
    """fsync by name returns once the file's upload is pinned; then it has a CID."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return os.getxattr(path, "user.prsm.cid").decode()


@pytest.mark.timeout(300)
def test_o_trunc__marks_mtime_and_ctime__kept_after_upload_and_restart(ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    old = 1_000_000_000_123_456_789  # 2001
    marks = {}
    for name, how in (("open", "open"), ("shell", "shell")):
        p = m.path(name)
        with open(p, "wb") as f:
            f.write(b"old content")
        wait_uploaded(p)
        os.utime(p, ns=(old, old))
        before = os.stat(p)
        assert before.st_mtime_ns == old
        t0 = time.time_ns()
        if how == "open":
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            st = os.fstat(fd)  # while open: the writer's view
            assert st.st_size == 0 and st.st_mtime_ns >= t0, (name, st)
            assert st.st_ctime_ns > before.st_ctime_ns, name
            os.close(fd)
        else:
            subprocess.run(["sh", "-c", ": > " + name], cwd=m.mountpoint, check=True)
        st = os.stat(p)
        assert st.st_size == 0, name
        assert t0 <= st.st_mtime_ns <= time.time_ns(), (name, st.st_mtime_ns, t0)
        assert st.st_ctime_ns > before.st_ctime_ns and st.st_ctime_ns >= st.st_mtime_ns, name
        marks[name] = (st.st_mtime_ns, st.st_ctime_ns)
        wait_uploaded(p)  # the empty content's upload keeps the times
        st = os.stat(p)
        assert (st.st_mtime_ns, st.st_ctime_ns) == marks[name], name
    m.restart()
    for name, (mtime, ctime) in marks.items():
        st = os.stat(m.path(name))
        assert (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (0, mtime, ctime), name


@pytest.mark.timeout(300)
def test_setgid_dir__new_entries_take_its_group__subdirs_keep_the_bit(mount_factory):
    m = mount_factory(options=["allow_other"])  # another uid below
    plain, shared = m.path("plain"), m.path("shared")
    os.mkdir(plain)
    os.mkdir(shared)
    os.chown(shared, 0, 4242)
    os.chmod(shared, 0o2777)
    assert os.stat(shared).st_mode & 0o7777 == 0o2777

    def make_all(top):
        with open(os.path.join(top, "file"), "w") as f:
            f.write("x")
        os.mknod(os.path.join(top, "node"), stat.S_IFREG | 0o644)
        os.mkfifo(os.path.join(top, "fifo"))
        os.symlink("file", os.path.join(top, "link"))
        os.mkdir(os.path.join(top, "sub"), 0o755)

    make_all(shared)
    make_all(plain)
    os.mkdir(os.path.join(shared, "sub", "deeper"))
    with open(os.path.join(shared, "sub", "deeper", "f"), "w") as f:
        f.write("y")
    for name in ("file", "node", "fifo", "link", "sub", "sub/deeper", "sub/deeper/f"):
        st = os.lstat(os.path.join(shared, name))
        assert st.st_gid == 4242, name
        assert os.lstat(os.path.join(plain, name.split("/")[0])).st_gid == 0, name
    for name in ("sub", "sub/deeper"):
        assert os.stat(os.path.join(shared, name)).st_mode & stat.S_ISGID, name
    assert not os.stat(os.path.join(plain, "sub")).st_mode & stat.S_ISGID
    assert not os.stat(os.path.join(shared, "file")).st_mode & stat.S_ISGID

    # a user outside the group (pytest's temporary directories are 0700: by directory fd)
    dir_fd = os.open(shared, os.O_DIRECTORY)
    code = ("import os; os.close(os.open('theirs', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=%d));"
            " os.mkdir('their-dir', 0o755, dir_fd=%d)" % (dir_fd, dir_fd))
    try:
        subprocess.run([sys.executable, "-c", code], user=1234, group=4321, extra_groups=[],
                       pass_fds=[dir_fd], check=True, timeout=60)
    finally:
        os.close(dir_fd)
    st = os.stat(os.path.join(shared, "theirs"))
    assert (st.st_uid, st.st_gid) == (1234, 4242)
    st = os.stat(os.path.join(shared, "their-dir"))
    assert (st.st_uid, st.st_gid) == (1234, 4242) and st.st_mode & stat.S_ISGID

    m.restart()
    assert os.stat(os.path.join(shared, "sub", "deeper")).st_mode & stat.S_ISGID
    assert os.stat(os.path.join(shared, "sub", "deeper", "f")).st_gid == 4242


def utc(*ymd_hms):
    return calendar.timegm(ymd_hms + (0,) * (6 - len(ymd_hms)))


@pytest.mark.timeout(300)
def test_times_before_1970_and_after_2262__exact_and_kept_across_restart(mount_factory):
    m = mount_factory()
    os.mkdir(m.path("d"))
    for name in ("t1960", "t2400", "ns"):
        open(m.path("d", name), "w").close()
    s1960, s2400 = utc(1960, 1, 1), utc(2400, 1, 1)
    assert s1960 == -315619200 and s2400 == 13569465600
    for name, date in (("t1960", "1960-01-01 00:00:00 UTC"), ("t2400", "2400-01-01 00:00:00 UTC")):
        subprocess.run(["touch", "-d", date, m.path("d", name)], check=True)
    # nanoseconds around the edges: floor division below 0, past the int64 ns range
    link = m.path("d", "link")
    os.symlink("t1960", link)  # (before the directory's times are set: it changes them)
    want_ns = {
        "ns": (-1, -315619200_000_000_001),  # 1969-12-31T23:59:59.999999999, 1959-12-31...
        "d": (s2400 * 10**9 + 999_999_999, utc(2262, 4, 12) * 10**9 + 1),
        "link": (-300 * 365 * 86400 * 10**9, 10**12 * 10**9 + 5),  # 1670, year 33658
    }
    for name, times in want_ns.items():
        os.utime(m.path("d", name) if name != "d" else m.path("d"), ns=times,
                 follow_symlinks=False)

    def check():
        # listed first: the stats below are answered from the listing's (readdirplus) entries
        assert sorted(os.listdir(m.path("d"))) == ["link", "ns", "t1960", "t2400"]
        for name, secs in (("t1960", s1960), ("t2400", s2400)):
            st = os.stat(m.path("d", name))
            assert (st.st_atime_ns, st.st_mtime_ns) == (secs * 10**9, secs * 10**9), name
            assert time.gmtime(st.st_mtime)[:3] == time.gmtime(secs)[:3], name
        for name, times in want_ns.items():
            st = os.lstat(m.path("d", name) if name != "d" else m.path("d"))
            assert (st.st_atime_ns, st.st_mtime_ns) == times, name
    check()
    m.restart()
    check()


DT = {1: "fifo", 2: "chr", 4: "dir", 6: "blk", 8: "reg", 10: "lnk", 12: "sock"}


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def dirent_types(path):
    """{name: d_type} as readdir(3) reports it (os.scandir does not expose d_type)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    d = libc.opendir(path.encode())
    assert d, os.strerror(ctypes.get_errno())
    out = {}
    try:
        while True:
            e = libc.readdir(d)
            if not e:
                break
            name = e.contents.d_name.decode()
            if name not in (".", ".."):
                out[name] = DT.get(e.contents.d_type, e.contents.d_type)
    finally:
        libc.closedir(d)
    return out


@pytest.mark.timeout(300)
def test_special_files__fifo_socket_devices_kept_renamed_and_skipped_by_publish(ipfs_node,
                                                                                 mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    t = m.path("t")
    os.makedirs(os.path.join(t, "sub"))
    with open(os.path.join(t, "file"), "wb") as f:
        f.write(b"published")
    with open(os.path.join(t, "sub", "inner"), "wb") as f:
        f.write(b"inner")
    os.mkfifo(os.path.join(t, "fifo"), 0o640)
    os.mknod(os.path.join(t, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(os.path.join(t, "sub", "disk"), stat.S_IFBLK | 0o660, os.makedev(259, 70000))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(os.path.join(t, "sock"))
    srv.listen(1)
    # the kernel serves a bound socket and a FIFO itself: the daemon only stores the inodes
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect(os.path.join(t, "sock"))
    conn, _ = srv.accept()
    cli.sendall(b"ping")
    assert conn.recv(4) == b"ping"
    for s in (conn, cli, srv):
        s.close()
    out = subprocess.run(["sh", "-c", "(echo hi > fifo &); cat fifo"], cwd=t, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout == "hi\n", out
    with pytest.raises(PermissionError):  # a device: the mount is nodev (libfuse's default)
        open(os.path.join(t, "null"), "rb")
    for p in ("fifo", "null", "sock", "sub/disk"):
        os.chmod(os.path.join(t, p), 0o604)  # chmod of each kind
    os.chown(os.path.join(t, "fifo"), 1234, 5678)
    os.utime(os.path.join(t, "null"), ns=(10**18, 10**18 + 1))
    os.rename(os.path.join(t, "sub", "disk"), os.path.join(t, "disk"))
    os.link(os.path.join(t, "fifo"), os.path.join(t, "sub", "fifo-hard"))

    want = {
        "fifo": (stat.S_IFIFO | 0o604, 0, 2),
        "null": (stat.S_IFCHR | 0o604, os.makedev(1, 3), 1),
        "disk": (stat.S_IFBLK | 0o604, os.makedev(259, 70000), 1),
        "sock": (stat.S_IFSOCK | 0o604, 0, 1),
    }

    def check():
        for name, (mode, rdev, nlink) in want.items():
            st = os.lstat(os.path.join(t, name))
            assert (st.st_mode, st.st_rdev, st.st_nlink, st.st_size) == (mode, rdev, nlink, 0), \
                (name, oct(st.st_mode), st.st_rdev)
        st = os.lstat(os.path.join(t, "fifo"))
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert os.lstat(os.path.join(t, "null")).st_mtime_ns == 10**18 + 1
        assert os.lstat(os.path.join(t, "sub", "fifo-hard")).st_ino == st.st_ino
        assert dirent_types(t) == {"sub": "dir", "file": "reg", "fifo": "fifo", "null": "chr",
                                   "disk": "blk", "sock": "sock"}
        assert dirent_types(os.path.join(t, "sub")) == {"inner": "reg", "fifo-hard": "fifo"}

    check()
    m.restart()
    check()
    out = subprocess.run(["sh", "-c", "(echo again > fifo &); cat fifo"], cwd=t,
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "again\n", out

    # publish: the tree's files and directories, special files left out with a notice
    out = subprocess.run([tool_binary("prsmctl"), "--json", "publish", t], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply.get("skipped_count") == 5, reply
    assert {e["path"]: e["reason"] for e in reply["skipped"]} == {
        "fifo": "fifo", "null": "char-device", "disk": "block-device", "sock": "socket",
        "sub/fifo-hard": "fifo"}, reply
    listing = ipfs_node.rpc_json("ls", [("arg", reply["cid"])], timeout=120)
    assert sorted(link["Name"] for link in listing["Objects"][0]["Links"]) == ["file", "sub"]
    sub = [link["Hash"] for link in listing["Objects"][0]["Links"] if link["Name"] == "sub"][0]
    listing = ipfs_node.rpc_json("ls", [("arg", sub)], timeout=120)
    assert [link["Name"] for link in listing["Objects"][0]["Links"]] == ["inner"]
    log = m.stderr()
    for name in ("fifo", "null", "disk", "sock", "sub/fifo-hard"):
        assert "skipping '%s'" % name in log, (name, log)

    # unlink of each kind
    for p in ("fifo", "null", "disk", "sock", "sub/fifo-hard"):
        os.unlink(os.path.join(t, p))
    assert sorted(os.listdir(t)) == ["file", "sub"]


@pytest.mark.timeout(180)
def test_listings__immutable_kept_by_the_kernel__mutable_asked_and_never_stale(
        ipfs_node, mount_factory, tmp_path):
    """The kernel keeps the listing of an immutable tree (.ipfs/CID: a second ls asks the
    daemon nothing) and never a mutable directory's, which lists every change at once:
    entries made, renamed in and out, linked and removed through the mount, and one that
    prsmctl link adds."""
    (port,) = free_ports(1)
    m = mount_factory(config=metrics_cfg([ipfs_node.api_url], port))

    def listings():
        """READDIR(PLUS) requests the daemon answered, once the count holds still: it counts
        a request after its reply, so the last one of a listing may count a moment later."""
        def count():
            s = scrape(port)[1]
            return sum(value(s, "prsmfs_fuse_operations_total", op=op)
                       for op in ("readdir", "readdirplus"))
        n = count()
        while True:
            time.sleep(0.2)
            again = count()
            if again == n:
                return n
            n = again

    src = tmp_path / "tree"
    os.makedirs(src / "sub")
    for i in range(40):
        (src / ("g%02d" % i)).write_bytes(b"%d" % i)
    (src / "sub" / "inner").write_bytes(b"inner")
    ro = m.path(".ipfs", ipfs_node.add_dir(str(src), cid_version=1, raw_leaves="true"))
    want = {"g%02d" % i for i in range(40)} | {"sub"}
    assert set(os.listdir(ro)) == want and os.listdir(os.path.join(ro, "sub")) == ["inner"]
    before = listings()
    time.sleep(1.2)  # past a mutable entry's timeout: the immutable listing is kept anyway
    for _ in range(3):
        assert set(os.listdir(ro)) == want and os.listdir(os.path.join(ro, "sub")) == ["inner"]
    assert listings() == before  # the kernel answered

    d = m.path("d")
    os.mkdir(d)
    os.mkdir(m.path("e"))
    names = {"f%02d" % i for i in range(50)}
    for n in names:
        open(os.path.join(d, n), "wb").close()
    assert set(os.listdir(d)) == names
    before = listings()
    assert set(os.listdir(d)) == names
    assert listings() > before  # a mutable directory's listing: asked each time
    steps = [
        (lambda: open(os.path.join(d, "new"), "wb").close(), {"new"}, set()),
        (lambda: os.rename(os.path.join(d, "f00"), m.path("e", "f00")), set(), {"f00"}),
        (lambda: os.rename(m.path("e", "f00"), os.path.join(d, "back")), {"back"}, set()),
        (lambda: os.unlink(os.path.join(d, "f01")), set(), {"f01"}),
        (lambda: os.mkdir(os.path.join(d, "sub")), {"sub"}, set()),
        (lambda: os.rmdir(os.path.join(d, "sub")), set(), {"sub"}),
        (lambda: os.symlink("f02", os.path.join(d, "sym")), {"sym"}, set()),
        (lambda: os.link(os.path.join(d, "f02"), os.path.join(d, "hard")), {"hard"}, set()),
        (lambda: os.mkfifo(os.path.join(d, "fifo")), {"fifo"}, set()),
    ]
    for do, added, removed in steps:
        assert set(os.listdir(d)) == names
        do()
        names = (names | added) - removed
        assert set(os.listdir(d)) == names, (added, removed)
    assert set(os.listdir(m.path("e"))) == set()

    cid = ipfs_node.add(b"linked from outside", cid_version=1, raw_leaves="true")
    assert set(os.listdir(d)) == names
    p = subprocess.run([tool_binary("prsmctl"), "link", cid, os.path.join(d, "linked")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert set(os.listdir(d)) == names | {"linked"}
    with open(os.path.join(d, "linked"), "rb") as f:
        assert f.read() == b"linked from outside"
    m.stop()
