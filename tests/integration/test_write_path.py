# SPDX-License-Identifier: GPL-2.0-or-later
"""The write path on real mounts: files created, written, truncated, renamed and read back
through the tools admins use (cp -a, rsync -a, tar x, shell redirections, git), durable at
close (kept across a restart and a kill -9), with size limits and read-your-writes."""
import errno
import json
import hashlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import pytest
from mount import fsync_path, tool_binary
from rpcproxy import RpcProxy

MiB = 1 << 20


def cfg(node, **extra):
    c = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


def tree_digest(top):
    """{relative path: (kind, mode, mtime_ns or None, sha256 or target)} not following links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("d", st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("f", st.st_mode & 0o7777, st.st_mtime_ns,
                                hashlib.sha256(f.read()).hexdigest())
    return out


def make_src(top, n_small=2000, seed=3):
    rnd = random.Random(seed)
    os.makedirs(os.path.join(top, "a", "b"))
    os.makedirs(os.path.join(top, "empty"))
    for i in range(n_small):
        d = os.path.join(top, "a" if i % 3 else "a/b")
        with open(os.path.join(d, "f%04d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randrange(0, 9000)))
        os.chmod(os.path.join(d, "f%04d" % i), rnd.choice([0o644, 0o600, 0o755]))
    for i in range(3):
        with open(os.path.join(top, "big%d.bin" % i), "wb") as f:
            f.write(rnd.randbytes((5 + 3 * i) * MiB + 77))
    os.symlink("a/f0001", os.path.join(top, "link"))
    os.link(os.path.join(top, "a", "f0001"), os.path.join(top, "hard"))


@pytest.mark.timeout(600)
def test_rsync_cp_tar_into_mount__same_tree_kept_across_restart(ipfs_node, mount_factory,
                                                                  tmp_path):
    src, small = str(tmp_path / "src"), str(tmp_path / "small")
    make_src(src)  # rsync: 2000 small files and three large ones
    make_src(small, n_small=200)  # cp -a and tar: the same shapes, fewer files
    m = mount_factory(config=cfg(ipfs_node))
    subprocess.run(["rsync", "-aH", src + "/", m.path("rs") + "/"], check=True)
    dry = subprocess.run(["rsync", "-aH", "--checksum", "--dry-run", "--itemize-changes",
                          src + "/", m.path("rs") + "/"], capture_output=True, text=True,
                         check=True)
    assert dry.stdout.strip() == "", dry.stdout
    assert tree_digest(m.path("rs")) == tree_digest(src)
    assert os.stat(m.path("rs", "hard")).st_ino == os.stat(m.path("rs", "a", "f0001")).st_ino
    subprocess.run(["cp", "-a", small, m.path("cp")], check=True)
    assert tree_digest(m.path("cp")) == tree_digest(small)
    tar = subprocess.run(["tar", "-C", small, "-cf", "-", "."], capture_output=True, check=True)
    os.mkdir(m.path("tar"))
    subprocess.run(["tar", "-C", m.path("tar"), "-xf", "-"], input=tar.stdout, check=True)

    def seconds(d):  # tar keeps whole seconds
        return {k: v[:2] + (v[2] // 10**9,) + v[3:] if v[0] == "f" else v for k, v in d.items()}

    assert seconds(tree_digest(m.path("tar"))) == seconds(tree_digest(small))
    m.restart()
    assert tree_digest(m.path("rs")) == tree_digest(src)
    assert tree_digest(m.path("cp")) == tree_digest(small)
    assert seconds(tree_digest(m.path("tar"))) == seconds(tree_digest(small))


@pytest.mark.timeout(300)
def test_posix_writes__offsets_append_truncate_excl_read_your_writes(ipfs_node, mount_factory):
    base = os.urandom(3 * MiB)
    cid = ipfs_node.add(base, cid_version=1, raw_leaves=True)
    m = mount_factory(config=cfg(ipfs_node), options=["allow_other"])  # other uids below
    p = subprocess.run([tool_binary("prsmctl"), "link", cid, m.path("linked")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # an in-place edit of linked content: only the written range changes
    with open(m.path("linked"), "r+b") as f:
        f.seek(MiB + 10)
        f.write(b"EDIT")
        f.seek(0)
        want = base[:MiB + 10] + b"EDIT" + base[MiB + 14:]
        assert f.read() == want  # read-your-writes before close
    with open(m.path("linked"), "rb") as f:
        assert f.read() == want
    # O_APPEND, sparse writes past the end, O_EXCL, truncate both ways
    with open(m.path("log"), "ab") as f:
        f.write(b"one\n")
    with open(m.path("log"), "ab") as f:
        f.write(b"two\n")
    with open(m.path("log"), "rb") as f:
        assert f.read() == b"one\ntwo\n"
    fd = os.open(m.path("sparse"), os.O_CREAT | os.O_WRONLY, 0o640)
    os.pwrite(fd, b"end", 10 * MiB)
    os.close(fd)
    assert os.stat(m.path("sparse")).st_size == 10 * MiB + 3
    with open(m.path("sparse"), "rb") as f:
        data = f.read()
    assert data[:10 * MiB] == bytes(10 * MiB) and data[10 * MiB:] == b"end"
    with pytest.raises(FileExistsError):
        os.open(m.path("sparse"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.truncate(m.path("linked"), 1000)
    with open(m.path("linked"), "rb") as f:
        assert f.read() == want[:1000]
    os.truncate(m.path("linked"), 5000)
    with open(m.path("linked"), "rb") as f:
        assert f.read() == want[:1000] + bytes(4000)
    with open(m.path("linked"), "wb") as f:  # O_TRUNC
        f.write(b"new")
    assert os.stat(m.path("linked")).st_size == 3
    # ownership and umask of new files come from the caller
    os.umask(0o027)
    try:
        with open(m.path("masked"), "w") as f:
            f.write("x")
    finally:
        os.umask(0o022)
    assert os.stat(m.path("masked")).st_mode & 0o777 == 0o640
    # other users (pytest's temporary directories are 0700: go through directory fds)
    os.mkdir(m.path("open"), 0o777)
    os.chmod(m.path("open"), 0o777)
    root_fd = os.open(m.mountpoint, os.O_DIRECTORY)
    open_fd = os.open(m.path("open"), os.O_DIRECTORY)

    def as_user(fn):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(4321)
                os.setuid(1234)
                fn()
                os._exit(0)
            except PermissionError:
                os._exit(13)
            except BaseException:
                os._exit(2)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def create_in(dir_fd):
        return lambda: os.close(os.open("mine", os.O_CREAT | os.O_WRONLY, 0o666,
                                        dir_fd=dir_fd))

    try:
        assert as_user(create_in(root_fd)) == 13  # the root is 0755 root: kernel says no
        assert as_user(create_in(open_fd)) == 0
    finally:
        os.close(root_fd)
        os.close(open_fd)
    st = os.stat(m.path("open", "mine"))
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert st.st_mode & 0o777 == 0o644  # 0666 under the child's umask 022
    m.restart()
    with open(m.path("linked"), "rb") as f:
        assert f.read() == b"new"
    with open(m.path("log"), "rb") as f:
        assert f.read() == b"one\ntwo\n"


@pytest.mark.timeout(300)
def test_limits__efbig_at_the_model_size_limit_and_enospc_on_a_full_staging_disk(
        ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node, max_model_size_mb=2), start=False)
    os.makedirs(m.cache_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", m.cache_dir], check=True)
    try:
        m.start()
        with open(m.path("ok"), "wb") as f:
            f.write(os.urandom(2 * MiB))
        with pytest.raises(OSError) as e:
            with open(m.path("too-big"), "wb") as f:
                f.write(os.urandom(2 * MiB))
                f.write(b"x")
                f.flush()
        assert e.value.errno == errno.EFBIG
        # the staging disk: 5 MiB, 4 MiB used by "ok" and what "too-big" kept: no room for
        # 1.5 MiB more
        with pytest.raises(OSError) as e:
            with open(m.path("nospace"), "wb") as f:
                f.write(os.urandom(MiB + MiB // 2))
                f.flush()
        assert e.value.errno == errno.ENOSPC
        with open(m.path("ok"), "rb") as f:  # what was acknowledged is intact
            assert len(f.read()) == 2 * MiB
        m.stop()
    finally:
        subprocess.run(["umount", "-l", m.cache_dir])


@pytest.mark.timeout(300)
def test_kill9__closed_files_kept_open_ones_not_half_visible(ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    closed = {}
    for i in range(30):
        data = os.urandom(random.randrange(0, 300000))
        with open(m.path("c%02d" % i), "wb") as f:
            f.write(data)
        closed["c%02d" % i] = data
    f = open(m.path("open-writer"), "wb")
    f.write(b"half")
    f.flush()  # in the kernel, not closed: no promise
    m.kill(signal.SIGKILL)
    try:
        f.close()
    except OSError:
        pass
    m.restart()
    for name, data in closed.items():
        with open(m.path(name), "rb") as g:
            assert g.read() == data, name
    assert os.path.getsize(m.path("open-writer")) == 0  # created, never closed: empty
    # every closed file ends uploaded (resumed after the kill), and no staging file is left
    for name in closed:
        fsync_path(m.path(name))
        assert os.getxattr(m.path(name), "user.prsm.cid")
    assert os.listdir(m.staging_dir()) == []
    out = subprocess.run([tool_binary("prsmctl"), "check", m.mountpoint], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr


def pinned(node, cid):
    out = node.rpc("pin/ls", [("arg", cid), ("type", "recursive")], timeout=60).decode()
    return cid in out or node.rpc_json("pin/ls", [("arg", cid)]) is not None


@pytest.mark.timeout(900)
@pytest.mark.parametrize("profile", ["default", "legacy"])
def test_close_uploads_pins_and_publish__cids_equal_the_nodes_add(ipfs_nodes_factory,
                                                                   mount_factory, tmp_path,
                                                                   profile):
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    m = mount_factory(config={"rpc_nodes": [n1.api_url, n2.api_url], "gateway_nodes": [],
                              "timeout": 60, "replicas": 2, "profile": profile})
    add_opts = (dict(cid_version=1, raw_leaves=True, chunker="size-1048576", cid_base="base32")
                if profile == "default" else dict(cid_version=0))
    src = str(tmp_path / "src")
    os.makedirs(os.path.join(src, "sub"))
    sizes = {"empty": 0, "one": 1, "chunk": MiB if profile == "default" else 256 * 1024,
             "chunk+1": MiB + 1, "three": 3 * MiB + 5, "sub/small": 300000}
    os.mkdir(m.path("pub"))
    os.mkdir(m.path("pub", "sub"))
    for name, size in sizes.items():
        data = os.urandom(size)
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
        with open(m.path("pub", name), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # returns once uploaded and pinned
        cid = os.getxattr(m.path("pub", name), "user.prsm.cid").decode()
        assert cid == n1.add(data, only_hash=True, pin=False, **add_opts), name
        for node in (n1, n2):
            assert pinned(node, cid), (name, node.name)
        assert n2.rpc("cat", [("arg", cid)], timeout=120) == data
    out = subprocess.run([tool_binary("prsmctl"), "--json", "publish", m.path("pub")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    root = json.loads(out.stdout)["cid"]
    assert root == n1.add_dir(src, only_hash=True, pin=False, **add_opts)
    assert pinned(n1, root) and pinned(n2, root)
    listing = n2.rpc_json("ls", [("arg", root)], timeout=120)
    names = sorted(link["Name"] for link in listing["Objects"][0]["Links"])
    assert names == sorted(["empty", "one", "chunk", "chunk+1", "three", "sub"])


@pytest.mark.timeout(600)
def test_git_clone_into_mount__fsck_clean(ipfs_node, mount_factory, tmp_path):
    repo = str(tmp_path / "repo")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", HOME=str(tmp_path))
    subprocess.run(["git", "init", "-q", repo], check=True, env=env)
    for i in range(30):
        with open(os.path.join(repo, "file%02d.txt" % (i % 7)), "a") as f:
            f.write("line %d\n" % i)
        subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", repo, "commit", "-qm", "c%d" % i], check=True, env=env)
    m = mount_factory(config=cfg(ipfs_node))
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", repo, m.path("clone")], check=True,
                   env=env)
    subprocess.run(["git", "-C", m.path("clone"), "fsck", "--full", "--strict"], check=True,
                   env=env)
    # work in the clone: edit, commit, gc (renames, packs, unlinks)
    with open(m.path("clone", "file00.txt"), "a") as f:
        f.write("edited in the mount\n")
    subprocess.run(["git", "-C", m.path("clone"), "commit", "-qam", "in mount"], check=True,
                   env=env)
    subprocess.run(["git", "-C", m.path("clone"), "gc", "-q"], check=True, env=env)
    subprocess.run(["git", "-C", m.path("clone"), "fsck", "--full", "--strict"], check=True,
                   env=env)
    m.restart()
    subprocess.run(["git", "-C", m.path("clone"), "fsck", "--full", "--strict"], check=True,
                   env=env)
    log = subprocess.run(["git", "-C", m.path("clone"), "log", "--oneline"], capture_output=True,
                         text=True, check=True, env=env).stdout
    assert len(log.splitlines()) == 31


@pytest.mark.timeout(900)
def test_crash__kill9_at_20_points_during_writes__no_closed_file_lost(ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    rnd = random.Random(11)
    closed = {}
    writes = 0
    point = 0
    # 20 kill points at least, and more (up to 150) until 200 closes were acknowledged: how
    # many fit between kills depends on the machine's load (60 gave 194 closes beside two
    # reliability campaigns)
    while point < 20 or (writes < 200 and point < 150):
        # a writer in a child process: it reports each file once close() returned
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                for i in range(1000):
                    name = "p%02d-%03d" % (point, i)
                    data = rnd.randbytes(rnd.randrange(0, 200000)) + name.encode()
                    fd = os.open(m.path(name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                    os.write(fd, data)
                    os.close(fd)
                    os.write(w, (name + " " + hashlib.sha256(data).hexdigest() + "\n").encode())
            except OSError:
                pass
            os._exit(0)
        os.close(w)
        time.sleep(rnd.uniform(0.05, 0.6))
        m.kill(signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            for line in f:
                if line.endswith("\n"):
                    name, digest = line.split()
                    closed[name] = digest
                    writes += 1
        m.restart()
        for name, digest in closed.items():
            with open(m.path(name), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == digest, (point, name)
        point += 1
    assert writes >= 200, "only %d closed writes: the kills came too early" % writes
    out = subprocess.run([tool_binary("prsmctl"), "check", m.mountpoint], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    # nothing half-written under a final name, no staging leak once the uploads are done
    for name in os.listdir(m.mountpoint):
        if name not in closed:  # killed before or during its close: empty, or all of it
            with open(m.path(name), "rb") as f:
                data = f.read()
            assert data == b"" or data.endswith(name.encode()), name
    # every file, not only the reported ones: a close the daemon made durable just before
    # its kill failed in the writer (ENOTCONN), so it went unreported, but its upload is owed
    for name in os.listdir(m.mountpoint):
        fsync_path(m.path(name))
    staged = os.listdir(m.staging_dir())
    assert staged == [], staged


@pytest.mark.timeout(600)
def test_write_node_killed_mid_upload__file_still_ends_pinned(ipfs_nodes_factory, mount_factory):
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    m = mount_factory(config={"rpc_nodes": [n1.api_url, n2.api_url], "gateway_nodes": [],
                              "timeout": 20, "stall_timeout": 1, "replicas": 1,
                              "profile": "legacy"})  # 256 KiB leaves: many puts to cut into
    data = os.urandom(80 * MiB)
    before = int(n1.rpc_json("repo/stat")["NumObjects"])
    with open(m.path("big"), "wb") as f:
        f.write(data)
    # close returned: the upload runs now; kill the node it writes to as soon as blocks flow
    # there (the uploader got fast enough to finish 40 MiB before a later kill)
    deadline = time.monotonic() + 60
    while int(n1.rpc_json("repo/stat")["NumObjects"]) < before + 2:
        assert time.monotonic() < deadline, "no upload reached the first node"
        time.sleep(0.05)
    n1.kill()
    fsync_path(m.path("big"))  # returns once pinned: on the surviving node
    cid = os.getxattr(m.path("big"), "user.prsm.cid").decode()
    assert cid == n2.add(data, only_hash=True, pin=False, cid_version=0)
    assert pinned(n2, cid)
    assert hashlib.sha256(n2.rpc("cat", [("arg", cid)], timeout=300)).digest() == \
        hashlib.sha256(data).digest()


def test_open_while_upload_commits__never_eio(ipfs_node, mount_factory):
    """Opens for reading and for appending race the commits of the files' uploads (which
    remove the staging files the opens were about to use): every open succeeds and reads
    the closed content, then the appended one."""
    m = mount_factory(config=cfg(ipfs_node))
    want = {}
    for i in range(300):
        name = "f%03d" % i
        want[name] = os.urandom(100 + i) + name.encode()
        with open(m.path(name), "wb") as f:
            f.write(want[name])
    committed = set()
    deadline = time.monotonic() + 120
    errors = []

    def reader(names):  # more opens in flight widen the window between getattr and open
        try:
            while len(committed) < len(want) and time.monotonic() < deadline:
                for name in names:
                    with open(m.path(name), "rb") as f:
                        assert f.read() == want[name], name
        except (OSError, AssertionError) as e:
            errors.append(e)

    names = sorted(want)
    threads = [threading.Thread(target=reader, args=(names[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    while len(committed) < len(want) and time.monotonic() < deadline and not errors:
        for name in names:
            if name not in committed:
                try:
                    os.getxattr(m.path(name), "user.prsm.cid")
                    committed.add(name)
                except OSError as e:
                    assert e.errno == errno.ENODATA
        time.sleep(0.05)
    committed.update(want)  # stops the readers
    for t in threads:
        t.join()
    assert errors == []
    assert time.monotonic() < deadline, "uploads did not finish in time"
    for name in list(want)[:50]:  # a writer whose base is the (just) committed content
        with open(m.path(name), "ab") as f:
            f.write(b"+")
        want[name] += b"+"
        with open(m.path(name), "rb") as f:
            assert f.read() == want[name], name


PUTS = ("/api/v0/add", "/api/v0/block/put")


def put_bytes(px):
    """Bytes of block bodies the node received: block/put and add requests."""
    with px.lock:
        return sum(n for path, _, n in px.requests if path in PUTS)


def stored_bytes(px):
    """Bytes of those bodies the node stored and answered (200), the answer passed on."""
    with px.lock:
        return sum(n for path, _, n, status in px.answered if path in PUTS and status == 200)


def write_until_stored(f, px, part):
    """Writes part (from the file's start) to the open file f, then waits until the node has
    stored and answered that many bytes through px and the daemon has had the answers."""
    f.write(part)
    f.flush()
    deadline = time.monotonic() + 60
    while stored_bytes(px) < len(part) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_bytes(px) >= len(part), px.requests  # every range, the file still open
    time.sleep(0.5)  # the answers were passed on: let the daemon note them


@pytest.mark.timeout(300)
def test_upload_while_writing__leaves_on_node_before_close__each_sent_once(ipfs_node,
                                                                            mount_factory):
    """A file written from its start: its completed 8 MiB ranges reach the node while it is
    still open; the job at close sends only the rest; the root is the node's own add's."""
    px = RpcProxy(ipfs_node.api_url).start()
    try:
        m = mount_factory(config={"rpc_nodes": [px.url], "gateway_nodes": [], "timeout": 30})
        data = random.Random(21).randbytes(40 * MiB + 5)
        with open(m.path("big"), "wb") as f:
            write_until_stored(f, px, data[:32 * MiB])  # all four ranges
            f.write(data[32 * MiB:])
        fsync_path(m.path("big"))
        cid = os.getxattr(m.path("big"), "user.prsm.cid").decode()
        assert cid == ipfs_node.add(data, only_hash=True, cid_version=1, raw_leaves=True,
                                    chunker="size-%d" % MiB, cid_base="base32")
        keys = ipfs_node.rpc_json("pin/ls", [("arg", cid), ("type", "recursive")]).get("Keys")
        assert keys and len(keys) == 1
        # every leaf went once: the file, the leaves js-ipfs refused on block/put (413, one
        # per early thread at most) before runs, multipart framing and the root
        assert put_bytes(px) <= len(data) + 2 * MiB + 64 * 1024, px.requests
        with open(m.path("big"), "rb") as f:
            assert f.read() == data
    finally:
        px.stop()


@pytest.mark.timeout(300)
def test_upload_while_writing__node_gc_before_close__resent_before_the_pin(ipfs_nodes_factory,
                                                                          mount_factory):
    """The node's GC drops the leaves put while the file was open: before it pins, the job
    finds them gone and sends them again, so its one pin never waits for missing blocks (a
    js-ipfs pin would wait for them over bitswap until the upload's deadline). A node of its
    own: its GC drops every unpinned block."""
    (ipfs_node,) = ipfs_nodes_factory(1)
    px = RpcProxy(ipfs_node.api_url).start()
    try:
        m = mount_factory(config={"rpc_nodes": [px.url], "gateway_nodes": [], "timeout": 30,
                                  "log_level": "notice"})
        data = random.Random(22).randbytes(24 * MiB + 7)
        with open(m.path("big"), "wb") as f:
            write_until_stored(f, px, data[:16 * MiB])
            ipfs_node.rpc("repo/gc", timeout=120)
            f.write(data[16 * MiB:])
        fsync_path(m.path("big"))
        cid = os.getxattr(m.path("big"), "user.prsm.cid").decode()
        keys = ipfs_node.rpc_json("pin/ls", [("arg", cid), ("type", "recursive")]).get("Keys")
        assert keys and len(keys) == 1
        with px.lock:
            pins = [r for r in px.requests if r[0] == "/api/v0/pin/add"]
        assert len(pins) == 1, pins  # none timed out waiting for the dropped leaves
        assert "lost blocks put before the close" in m.stderr()
        # the node serves every byte: the leaves were sent again
        assert ipfs_node.rpc("cat", [("arg", cid)], timeout=120) == data
    finally:
        px.stop()


def resident_pages(path):
    """(resident, total) pages of path in the page cache, by mincore(2) on a mapping of it."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    size = os.path.getsize(path)
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
            return sum(b & 1 for b in vec.raw), pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


@pytest.mark.timeout(300)
def test_big_write__staged_copy_leaves_the_page_cache_behind_the_writer(ipfs_node, mount_factory):
    """A big file written from its start: the staging copy of what is some units behind the
    writer is written back and dropped from the page cache while the file is still open (it
    would otherwise be cached twice), and every byte still reads back, before and after the
    close. Early puts off: their reads of the staging file would cache it again."""
    m = mount_factory(config=cfg(ipfs_node, upload_while_writing=False))
    data = random.Random(23).randbytes(64 * MiB + 3)
    with open(m.path("big"), "wb", buffering=0) as f:
        for off in range(0, len(data), MiB):
            f.write(data[off:off + MiB])
        staged = os.listdir(m.staging_dir())
        assert len(staged) == 1, staged
        resident, total = resident_pages(os.path.join(m.staging_dir(), staged[0]))
        # all but the last units (up to 3 of 8 MiB: the one being written, two kept) dropped
        assert total == (len(data) + 4095) // 4096
        assert resident <= 24 * MiB // 4096 + 16, (resident, total)
        with open(m.path("big"), "rb") as g:  # read-your-writes from the staged copy
            assert hashlib.sha256(g.read()).digest() == hashlib.sha256(data).digest()
    fsync_path(m.path("big"))
    with open(m.path("big"), "rb") as f:
        assert f.read() == data


@pytest.mark.timeout(300)
def test_staging_writeback_error__close_fails_never_wrong_bytes(ipfs_node, mount_factory,
                                                                tmp_path):
    """The staging disk fails under the writer for a while (an ext2 on a loop device whose
    backing file sits on a small tmpfs: while a filler file takes the room, writeback gets
    I/O errors though write() succeeds): the close reports the error even though the disk
    works again by then, and the file never shows other bytes. The drop-behind's waits
    consume a writeback error for their fd, so the fdatasync at close would return 0 after
    it (seen: the close succeeded before the fix). The writer pauses after each 8 MiB so
    each unit's writeback ends before the next unit (and its wait) starts."""
    m = mount_factory(config=cfg(ipfs_node, upload_while_writing=False), start=False)
    back = str(tmp_path / "back")
    os.makedirs(back)
    os.makedirs(m.cache_dir)
    loop = None
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", back], check=True)
    try:
        img = os.path.join(back, "disk.img")
        with open(img, "wb") as f:
            f.truncate(160 * MiB)  # sparse: the tmpfs fills as the fs writes
        loop = subprocess.run(["losetup", "-f", "--show", img], check=True,
                              capture_output=True, text=True).stdout.strip()
        subprocess.run(["mkfs.ext2", "-q", "-F", loop], check=True)
        subprocess.run(["mount", loop, m.cache_dir], check=True)
        m.start()
        # leave room for about 12 MiB more: the first unit's writeback fits, the second's
        # does not
        free = os.statvfs(back).f_bavail * os.statvfs(back).f_frsize
        with open(os.path.join(back, "filler"), "wb") as f:
            f.write(b"\0" * (free - 12 * MiB))
        data = random.Random(24).randbytes(6 * 8 * MiB)
        failed = None
        f = open(m.path("big"), "wb", buffering=0)
        try:
            for unit in range(6):
                for off in range(unit * 8 * MiB, (unit + 1) * 8 * MiB, MiB):
                    f.write(data[off:off + MiB])
                time.sleep(0.5)
                if unit == 1:
                    os.unlink(os.path.join(back, "filler"))  # the disk works again
        except OSError as e:
            failed = e
        try:
            f.close()
        except OSError as e:
            failed = failed or e
        with open("/proc/sys/vm/drop_caches", "w") as g:
            g.write("3")  # what the mount shows comes from the staging disk, not a cache
        with open(m.path("big"), "rb") as g:
            got = g.read()
        # whatever the mount shows under the name, it is never other bytes
        assert got == data[:len(got)], len(got)
        assert failed is not None and failed.errno in (errno.EIO, errno.ENOSPC), failed
        m.stop()
    finally:  # lazily: a daemon still running (a failed assert) is stopped by the fixture
        subprocess.run(["umount", "-l", m.cache_dir])
        if loop:
            subprocess.run(["losetup", "-d", loop])
        subprocess.run(["umount", "-l", back])
