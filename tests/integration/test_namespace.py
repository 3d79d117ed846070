# SPDX-License-Identifier: GPL-2.0-or-later
"""Namespace changes on a real mount (the index side of the write path): mkdir, symlink,
hard links, rename (over files, across directories, refusals), unlink, rmdir, chmod, chown,
utimensat and user xattrs, on linked content from a real node, kept across a restart."""
import errno
import os
import subprocess

import pytest
from mount import tool_binary

MiB = 1 << 20


def link(m, cid, name):
    p = subprocess.run([tool_binary("prsmctl"), "link", cid, m.path(name)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def cfg(node):
    return {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}


@pytest.mark.timeout(300)
def test_namespace_ops__posix_results_and_kept_across_restart(ipfs_node, mount_factory):
    a, b = os.urandom(3000), os.urandom(MiB + 5)
    ca, cb = ipfs_node.add(a), ipfs_node.add(b, cid_version=1, raw_leaves=True)
    m = mount_factory(config=cfg(ipfs_node))
    os.makedirs(m.path("d1", "sub"))
    os.mkdir(m.path("d2"))
    link(m, ca, "d1/a")
    link(m, cb, "d1/b")

    # symlink, readlink, hard link
    os.symlink("d1/a", m.path("sl"))
    assert os.readlink(m.path("sl")) == "d1/a"
    with open(m.path("sl"), "rb") as f:
        assert f.read() == a
    os.link(m.path("d1", "a"), m.path("d2", "a-hard"))
    assert os.stat(m.path("d1", "a")).st_nlink == 2
    assert os.stat(m.path("d2", "a-hard")).st_ino == os.stat(m.path("d1", "a")).st_ino

    # rename: over an existing file (rsync's temp file), across directories, refusals
    os.rename(m.path("d1", "b"), m.path("d2", "a-hard"))
    with open(m.path("d2", "a-hard"), "rb") as f:
        assert f.read() == b
    assert os.stat(m.path("d1", "a")).st_nlink == 1
    with pytest.raises(OSError) as e:
        os.rename(m.path("d2"), m.path("d1"))
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as e:
        os.rename(m.path("d1"), m.path("d1", "sub", "inside"))
    assert e.value.errno == errno.EINVAL
    os.rename(m.path("d1", "sub"), m.path("d2", "sub-moved"))
    assert os.stat(m.path("d2")).st_nlink == 3 and os.stat(m.path("d1")).st_nlink == 2
    with pytest.raises(OSError) as e:
        os.rmdir(m.path("d2"))
    assert e.value.errno == errno.ENOTEMPTY

    # unlink of an open file: still readable through the handle
    f = open(m.path("d2", "a-hard"), "rb")
    os.unlink(m.path("d2", "a-hard"))
    assert not os.path.exists(m.path("d2", "a-hard"))
    assert f.read() == b
    f.close()

    # chmod, chown, utimensat, xattrs
    os.chmod(m.path("d1", "a"), 0o600)
    os.chown(m.path("d1", "a"), 1234, 5678)
    os.utime(m.path("d1", "a"), ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.setxattr(m.path("d1", "a"), "user.origin", b"hf://model")
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("d1", "a"), "user.prsm.cid", b"forged")
    assert e.value.errno == errno.EPERM
    st = os.stat(m.path("d1", "a"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 1234, 5678)
    assert st.st_mtime_ns == 1_500_000_000_987_654_321
    assert os.getxattr(m.path("d1", "a"), "user.origin") == b"hf://model"
    # the synthetic user.prsm.cid is read by name, not listed (rsync -X, cp -a)
    assert os.getxattr(m.path("d1", "a"), "user.prsm.cid")
    assert set(os.listxattr(m.path("d1", "a"))) == {"user.origin"}
    os.removexattr(m.path("d1", "a"), "user.origin")
    with pytest.raises(OSError) as e:
        os.getxattr(m.path("d1", "a"), "user.origin")
    assert e.value.errno == errno.ENODATA
    for name in ("security.selinux", "system.posix_acl_access"):  # what ls -l asks for
        with pytest.raises(OSError) as e:
            os.getxattr(m.path("d1", "a"), name)
        assert e.value.errno == errno.EOPNOTSUPP  # not stored here, as setxattr says
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("d1", "a"), "security.label", b"x")
    assert e.value.errno == errno.EOPNOTSUPP
    os.setxattr(m.path("d1", "a"), "user.kept", b"1")
    os.rmdir(m.path("d2", "sub-moved"))

    m.restart()
    assert sorted(os.listdir(m.mountpoint)) == ["d1", "d2", "sl"]
    assert os.listdir(m.path("d2")) == []
    st = os.stat(m.path("d1", "a"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_mtime_ns) == (0o600, 1234,
                                                                 1_500_000_000_987_654_321)
    assert os.getxattr(m.path("d1", "a"), "user.kept") == b"1"
    with open(m.path("sl"), "rb") as f:
        assert f.read() == a
    out = subprocess.run([tool_binary("prsmctl"), "check", m.mountpoint], capture_output=True,
                         text=True)
    assert out.returncode == 0 and '"ok"' in out.stdout
