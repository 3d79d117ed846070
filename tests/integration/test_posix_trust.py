# SPDX-License-Identifier: GPL-2.0-or-later
"""What every local file system gets right and a user takes for granted, on real mounts with a
real js-ipfs node: appends seen by every descriptor, unlink right after close, inode numbers
that never name two files, staging data that does not pile up, a failed write that adds
nothing, a .ipfs that cannot be replaced, and extended attributes that admin tools copy
without surprises (issue 15)."""
import hashlib
import os
import sqlite3
import subprocess
import threading
import time

import pytest
from mount import fsync_path

MiB = 1 << 20


def cfg(node, **extra):
    c = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


@pytest.mark.timeout(120)
def test_append_while_another_fd_reads__no_line_lost(ipfs_node, mount_factory):
    """The shell case from the issue, as a user types it: a reader's fd on the file must not
    make the kernel believe the file shrank (a short read of the old content), which put the
    next append over the previous line."""
    m = mount_factory(config=cfg(ipfs_node))
    script = """
f=%s; echo start > $f; exec 3<$f
for i in 1 2 3 4; do echo "line $i" >> $f; cat <&3 >/dev/null; sleep 0.5; done
exec 3<&-; sleep 2; cat $f
""" % m.path("log")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "start\nline 1\nline 2\nline 3\nline 4\n"


@pytest.mark.timeout(300)
def test_several_readers_and_writers_on_one_file__tail_sees_every_line(ipfs_node,
                                                                       mount_factory):
    """3 appenders (each opening, appending a line, closing) and 3 followers (tail -f style:
    one fd kept open, reading what is new): every line lands exactly once, and every follower
    reads the file's exact content in order."""
    m = mount_factory(config=cfg(ipfs_node))
    f = m.path("log")
    open(f, "w").close()
    lock = threading.Lock()  # appends of one line each, as O_APPEND writers would
    stop = threading.Event()
    got = [b"", b"", b""]
    errors = []

    def appender(k):
        try:
            for i in range(40):
                with lock:
                    with open(f, "ab") as w:
                        w.write(b"w%d line %03d\n" % (k, i))
                time.sleep(0.005 * k)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def follower(k):
        try:
            with open(f, "rb") as r:
                while True:
                    done = stop.is_set()
                    got[k] += r.read()
                    if done:
                        break
                    time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=follower, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    ws = [threading.Thread(target=appender, args=(k,)) for k in range(3)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    for t in ts:
        t.join()
    assert not errors, errors
    with open(f, "rb") as r:
        final = r.read()
    lines = final.splitlines()
    assert len(lines) == 120, final
    assert sorted(lines) == sorted(b"w%d line %03d" % (k, i) for k in range(3) for i in range(40))
    for k in range(3):
        assert got[k] == final, (k, got[k][-200:], final[-200:])


@pytest.mark.timeout(300)
def test_unlink_right_after_close__never_enoent(ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    fails = []
    for i in range(2000):
        p = m.path("t%d" % (i % 7))
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.pwrite(fd, b"x" * (i % 5000 + 1), 0)
        os.close(fd)
        try:
            os.unlink(p)
        except OSError as e:
            fails.append((i, e))
    assert not fails, fails[:5]
    assert [n for n in os.listdir(m.mountpoint) if n.startswith("t")] == []


@pytest.mark.timeout(900)
def test_sqlite_default_journal__autocommits_and_three_writers(ipfs_node, mount_factory):
    """SQLite in its default rollback-journal mode creates, writes, fsyncs and deletes its
    journal at every commit: 10,000 autocommits, then 3 processes writing at once."""
    m = mount_factory(config=cfg(ipfs_node))
    db = m.path("t.db")
    con = sqlite3.connect(db, isolation_level=None)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    # each commit makes, writes and deletes the journal: with synchronous=OFF for most of
    # them (each fsync waits for an upload and its pin), FULL for the rest
    con.execute("PRAGMA synchronous=OFF")
    for i in range(9000):
        con.execute("INSERT INTO t (v) VALUES (?)", ("row %d" % i,))
    con.execute("PRAGMA synchronous=FULL")
    for i in range(9000, 10000):
        con.execute("INSERT INTO t (v) VALUES (?)", ("row %d" % i,))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 10000
    con.close()
    script = ("import sqlite3, sys\n"
              "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
              "for i in range(200):\n"
              "    c.execute('INSERT INTO t (v) VALUES (?)', ('w%s %d' % (sys.argv[2], i),))\n")
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", script, db, str(k)],
                              stderr=subprocess.PIPE)
             for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 10600
    con.close()
    assert not os.path.exists(db + "-journal")


def staging_files(m):
    """The mount's staging files."""
    return [os.path.join(m.staging_dir(), n) for n in os.listdir(m.staging_dir())]


def wait_no_staging(m, timeout=60):
    deadline = time.monotonic() + timeout
    while staging_files(m) and time.monotonic() < deadline:
        time.sleep(0.1)
    return staging_files(m)


@pytest.mark.timeout(300)
def test_repeated_fsync_and_msync__staging_holds_only_what_is_pending(ipfs_node, mount_factory):
    """A database or an editor fsyncs a file it keeps open: each fsync uploads and pins, and
    no copy stays behind (10 fsync cycles once left 10 full-size staging files)."""
    import mmap

    m = mount_factory(config=cfg(ipfs_node))
    f = m.path("db")
    data = bytearray(os.urandom(100_000))
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, bytes(data), 0)
        for i in range(10):
            data[i * 1000:i * 1000 + 4] = b"%04d" % i
            os.pwrite(fd, b"%04d" % i, i * 1000)
            os.fsync(fd)
            assert len(staging_files(m)) <= 2, staging_files(m)  # the current one (and base)
        with mmap.mmap(fd, len(data)) as mm:
            for i in range(5):
                mm[50_000 + i] = ord("M")
                data[50_000 + i] = ord("M")
                mm.flush()  # msync(MS_SYNC)
                assert len(staging_files(m)) <= 2, staging_files(m)
    finally:
        os.close(fd)
    assert wait_no_staging(m) == []
    with open(f, "rb") as r:
        assert r.read() == bytes(data)
    m.restart()
    with open(f, "rb") as r:
        assert r.read() == bytes(data)


@pytest.mark.timeout(300)
def test_readers_open_while_uploads_commit__no_staging_left(ipfs_node, mount_factory):
    """8 readers and 2 writers on 10 files for a while: once the uploads are done, the
    staging directory is empty (readers holding a file while its upload committed used to
    keep its staging copy until the next start)."""
    m = mount_factory(config=cfg(ipfs_node))
    names = [m.path("f%d" % i) for i in range(10)]
    for n in names:
        with open(n, "wb") as w:
            w.write(os.urandom(50_000))
    stop = threading.Event()
    errors = []

    def reader(k):
        try:
            while not stop.is_set():
                with open(names[k % 10], "rb") as r:
                    r.read(1000)
                    time.sleep(0.02)
                    r.read()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def writer(k):
        try:
            for i in range(30):
                n = names[(k * 5 + i) % 10]
                with open(n, "r+b") as w:  # read-write: the readers share its writer
                    w.seek(i * 100)
                    w.write(os.urandom(100))
                time.sleep(0.03)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    rs = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    ws = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in rs + ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    for t in rs:
        t.join()
    assert not errors, errors
    for n in names:
        fsync_path(n)
    assert wait_no_staging(m) == []


@pytest.mark.timeout(300)
def test_inode_number_not_reused_while_held__no_mixed_bytes(ipfs_node, mount_factory):
    """x is kept open by a process and unlinked; y, made next, must not take x's inode
    number (SQLite gives the largest rowid plus one): through the old fd and through a new fd
    on y, each reads its own bytes, and fstat of the old fd is x's."""
    m = mount_factory(config=cfg(ipfs_node))
    for round_ in range(3):
        x, y = m.path("x%d" % round_), m.path("y%d" % round_)
        with open(x, "wb") as f:
            f.write(b"A" * MiB)
        p = open(x, "rb")
        st_x = os.fstat(p.fileno())
        os.unlink(x)
        with open(y, "wb") as f:
            f.write(b"B" * MiB)
        st_y = os.stat(y)
        assert st_y.st_ino != st_x.st_ino
        assert os.fstat(p.fileno()).st_ino == st_x.st_ino
        assert os.fstat(p.fileno()).st_size == MiB
        assert p.read() == b"A" * MiB
        with open(y, "rb") as f:
            assert f.read() == b"B" * MiB
        fsync_path(y)  # its upload commits while x is still open
        p.seek(0)
        assert p.read() == b"A" * MiB
        assert os.fstat(p.fileno()).st_nlink == 0
        p.close()
        with open(y, "rb") as f:
            assert f.read() == b"B" * MiB


@pytest.mark.timeout(300)
def test_failed_write_adds_nothing__short_write_then_enospc(ipfs_node, mount_factory):
    """The staging disk fills during a write: the bytes it took are a short write, the rest
    fail with ENOSPC, and after the upload the file is exactly what was acknowledged."""
    import errno

    m = mount_factory(config=cfg(ipfs_node), start=False)
    os.makedirs(m.cache_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", m.cache_dir], check=True)
    try:
        m.start()
        data = os.urandom(4 * MiB)
        acked = 0
        fd = os.open(m.path("f"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            while acked < len(data):
                try:
                    n = os.write(fd, data[acked:acked + 300_000])
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
                assert n > 0
                acked += n
        finally:
            try:
                os.close(fd)
            except OSError as e:
                assert e.errno == errno.ENOSPC
        assert 0 < acked < len(data)
        assert os.path.getsize(m.path("f")) == acked
        with open(m.path("f"), "rb") as r:
            assert r.read() == data[:acked]
        fsync_path(m.path("f"))  # uploaded: the CID's content is what was acknowledged
        assert os.path.getsize(m.path("f")) == acked
        cid = os.getxattr(m.path("f"), "user.prsm.cid").decode()
        assert ipfs_node.rpc("cat", [("arg", cid)], timeout=120) == data[:acked]
        m.restart()
        assert os.path.getsize(m.path("f")) == acked
        with open(m.path("f"), "rb") as r:
            assert r.read() == data[:acked]
        m.stop()
    finally:
        subprocess.run(["umount", "-l", m.cache_dir])


def test_unusable_staging_directory__refuses_to_mount(ipfs_node, mount_factory):
    from mount import DaemonFailure

    m = mount_factory(config=cfg(ipfs_node), start=False)
    os.makedirs(m.cache_dir)
    with open(os.path.join(m.cache_dir, "staging"), "w") as f:
        f.write("not a directory")
    with pytest.raises(DaemonFailure) as e:
        m.start()
    m.proc = None  # exited as it should: nothing for the teardown to stop
    assert "staging directory" in str(e.value)
    assert not os.listdir(m.mountpoint)


@pytest.mark.timeout(120)
def test_dot_ipfs_cannot_be_replaced(ipfs_node, mount_factory):
    import errno

    cid = ipfs_node.add(b"verified content\n", cid_version=1, raw_leaves=True)
    m = mount_factory(config=cfg(ipfs_node))
    os.mkdir(m.path("d"))
    for fn in (lambda: os.rename(m.path(".ipfs"), m.path("elsewhere")),
               lambda: os.rmdir(m.path(".ipfs")),
               lambda: os.rename(m.path("d"), m.path(".ipfs")),
               lambda: os.mkdir(m.path(".ipfs"))):
        with pytest.raises(OSError) as e:
            fn()
        assert e.value.errno in (errno.EBUSY, errno.EEXIST), e.value
    with open(m.path(".ipfs", cid), "rb") as f:
        assert f.read() == b"verified content\n"
    # an index where an older prsmfs let .ipfs be replaced by a writable directory holding a
    # forged file named after the CID: after a restart, .ipfs is the daemon's again
    os.mkdir(m.path("forged"))
    with open(m.path("forged", cid), "wb") as f:
        f.write(b"forged bytes\n")
    m.stop()
    db = sqlite3.connect(os.path.join(m.state_dir, "index.sqlite"))
    with db:
        ipfs_ino = db.execute("SELECT ino FROM dentries WHERE parent = 1 AND name = ?",
                              (b".ipfs",)).fetchone()[0]
        db.execute("UPDATE dentries SET name = ? WHERE parent = 1 AND name = ?",
                   (b"old-ipfs", b".ipfs"))
        db.execute("UPDATE dentries SET name = ? WHERE parent = 1 AND name = ?",
                   (b".ipfs", b"forged"))
        assert ipfs_ino
    db.close()
    m.start()
    with open(m.path(".ipfs", cid), "rb") as f:
        assert f.read() == b"verified content\n"
    with pytest.raises(OSError):
        os.mkdir(m.path(".ipfs", "x"))


def itemized(src, dst, *flags):
    out = subprocess.run(["rsync", *flags, "--itemize-changes", src + "/", dst + "/"],
                         capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


@pytest.mark.timeout(300)
def test_admin_tools_converge__rsync_aHAX_twice_and_cp_a_out(ipfs_node, mount_factory,
                                                             tmp_path):
    m = mount_factory(config=cfg(ipfs_node))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / "sub" / ("f%d" % i)).write_bytes(os.urandom(i * 1000 + 1))
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(src / "run.sh", 0o755)
    os.link(src / "sub" / "f1", src / "hard")
    os.symlink("sub/f2", src / "link")
    os.setxattr(src / "sub" / "f3", "user.origin", b"hf://x")
    dst = m.path("dst")
    rc, out, err = itemized(str(src), dst, "-aHAX")
    assert rc == 0, err
    for name in ("sub/f5",):
        fsync_path(os.path.join(dst, name))
    rc, out, err = itemized(str(src), dst, "-aHAX")
    assert rc == 0, err
    assert out.strip() == "", out  # the second run transfers nothing
    assert os.getxattr(os.path.join(dst, "sub", "f3"), "user.origin") == b"hf://x"
    # cp -a out: the copy carries the user's attributes, never user.prsm.*
    back = tmp_path / "back"
    subprocess.run(["cp", "-a", dst, str(back)], check=True)
    for dirpath, dirnames, filenames in os.walk(back):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                assert not [a for a in os.listxattr(p) if a.startswith("user.prsm.")], p
    assert os.getxattr(back / "sub" / "f3", "user.origin") == b"hf://x"


@pytest.mark.timeout(120)
def test_pending_upload_shows_no_cid(ipfs_node, mount_factory):
    """A file whose upload is pending (its node unreachable) shows no CID, never the empty
    file's; once uploaded, its own."""
    import errno

    m = mount_factory(config=cfg(ipfs_node))
    open(m.path("f"), "wb").close()
    fsync_path(m.path("f"))  # the empty file's CID, committed
    assert os.getxattr(m.path("f"), "user.prsm.cid")
    fd = os.open(m.path("f"), os.O_WRONLY)
    os.write(fd, b"x" * 1000)
    with pytest.raises(OSError) as e:  # written, not closed: pending
        os.getxattr(m.path("f"), "user.prsm.cid")
    assert e.value.errno == errno.ENODATA
    os.write(fd, b"y")
    os.close(fd)
    fsync_path(m.path("f"))
    cid = os.getxattr(m.path("f"), "user.prsm.cid").decode()
    assert cid == ipfs_node.add(b"x" * 1000 + b"y", cid_version=1, raw_leaves=True,
                                cid_base="base32")


@pytest.mark.timeout(300)
def test_directory_cid_is_its_current_content__df_is_the_staging_disk(ipfs_node, mount_factory,
                                                                      tmp_path):
    """A linked directory shows its CID until something under it changes, then none (never
    the stale root) until a publish gives the new one. df shows the staging disk."""
    import errno
    import json

    from mount import tool_binary

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_bytes(b"a" * 1000)
    (src / "sub" / "b").write_bytes(b"b" * 2000)
    root = ipfs_node.add_dir(str(src), cid_version=1, raw_leaves=True, cid_base="base32")
    m = mount_factory(config=cfg(ipfs_node))
    p = subprocess.run([tool_binary("prsmctl"), "link", root, m.path("d")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert os.getxattr(m.path("d"), "user.prsm.cid").decode() == root
    assert sorted(os.listdir(m.path("d"))) == ["a", "sub"]  # expanded, unchanged
    assert os.getxattr(m.path("d"), "user.prsm.cid").decode() == root
    sub = os.getxattr(m.path("d", "sub"), "user.prsm.cid").decode()
    with open(m.path("d", "sub", "new"), "wb") as f:
        f.write(b"new")
    for path in (m.path("d"), m.path("d", "sub")):
        with pytest.raises(OSError) as e:
            os.getxattr(path, "user.prsm.cid")
        assert e.value.errno == errno.ENODATA, path
    # uploaded first: a commit while the publish builds the tree keeps it from recording
    # the root (the tree changed under it)
    fsync_path(m.path("d", "sub", "new"))
    out = subprocess.run([tool_binary("prsmctl"), "--json", "publish", m.path("d")],
                         capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    new_root = json.loads(out.stdout)["cid"]
    assert new_root != root
    assert os.getxattr(m.path("d"), "user.prsm.cid").decode() == new_root
    os.unlink(m.path("d", "sub", "new"))
    with pytest.raises(OSError):
        os.getxattr(m.path("d"), "user.prsm.cid")
    assert sub != new_root
    # df: the staging disk (cache_dir), not the cache cap
    vfs, local = os.statvfs(m.mountpoint), os.statvfs(m.cache_dir)
    assert vfs.f_blocks * vfs.f_frsize == local.f_blocks * local.f_frsize
    assert abs(vfs.f_bavail * vfs.f_frsize - local.f_bavail * local.f_frsize) < 256 * MiB


@pytest.mark.timeout(120)
def test_trusted_xattrs_are_roots_only(ipfs_node, mount_factory):
    """An unprivileged caller neither lists, reads nor sets trusted.* (root does)."""
    m = mount_factory(config=cfg(ipfs_node), options=["allow_other"])
    f = m.path("f")
    with open(f, "wb") as w:
        w.write(b"x")
    os.chmod(f, 0o666)
    os.chmod(m.mountpoint, 0o777)
    os.setxattr(f, "trusted.secret", b"root's")
    os.setxattr(f, "user.note", b"anyone's")
    assert set(os.listxattr(f)) == {"trusted.secret", "user.note"}
    # the child gets the file by fd: pytest's directories above the mount are root's only
    probe = ("import os, sys\n"
             "fd = int(sys.argv[1])\n"
             "print(sorted(os.listxattr(fd)))\n"
             "for op in (lambda: os.getxattr(fd, 'trusted.secret'),\n"
             "           lambda: os.setxattr(fd, 'trusted.other', b'x'),\n"
             "           lambda: os.removexattr(fd, 'trusted.secret')):\n"
             "    try:\n"
             "        op()\n"
             "        print('allowed')\n"
             "    except OSError as e:\n"
             "        print(e.errno)\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        out = subprocess.run(["/usr/bin/python3", "-c", probe, str(fd)], capture_output=True,
                             text=True, pass_fds=(fd,),
                             preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    finally:
        os.close(fd)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "['user.note']"
    assert "allowed" not in lines[1:], out.stdout
    assert os.getxattr(f, "trusted.secret") == b"root's"
