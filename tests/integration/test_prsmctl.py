# SPDX-License-Identifier: GPL-2.0-or-later
"""prsmctl against a real mount and a real js-ipfs node (issue 18): every command, its --json
output parsed, the human forms on a terminal, two clients at once (a publish held up by a slow
node while status answers), the errors without a mount, and a state_dir whose control socket
path is longer than a unix socket address (108 bytes)."""
import json
import os
import pty
import signal
import socket
import stat
import subprocess
import threading
import time

from mount import fsync_path, prsmfs_binary, tool_binary
from rpcproxy import RpcProxy

MiB = 1 << 20


def cfg(url, **extra):
    c = {"rpc_nodes": [url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


def ctl(*args, timeout=120):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ctl_json(*args):
    rc, out, err = ctl("--json", *args)
    assert rc == 0, (args, out, err)
    return json.loads(out)


def ctl_tty(*args, timeout=60):
    """prsmctl with stdout and stderr on a pseudo-terminal: its human forms."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([tool_binary("prsmctl")] + list(args), stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=slave)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        try:
            rc = p.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return rc, out.decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    fsync_path(path)


def test_prsmctl__no_mount__usage_version_and_clear_errors(tmp_path):
    rc, out, err = ctl("--version")
    assert rc == 0 and out.startswith("prsmctl "), (rc, out, err)
    rc, out, err = ctl("help")
    assert rc == 0 and "status" in out and "uploads" in out and "publish" in out, out
    rc, out, err = ctl("help", "uploads")
    assert rc == 0 and out.startswith("usage: prsmctl") and "retry" in out, out
    rc, out, err = ctl("frobnicate")
    assert rc == 2 and "unknown command 'frobnicate'" in err and "usage:" in err, err
    rc, out, err = ctl("status", "--bogus")
    assert rc == 2 and "unknown option" in err and "usage: prsmctl" in err, err
    rc, out, err = ctl("status", str(tmp_path))
    assert rc == 1 and "no prsmfs mount found at %s" % tmp_path in err, err
    rc, out, err = ctl("-s", str(tmp_path / "control.sock"), "status")
    assert rc == 1 and "no prsmfs daemon answers" in err and "not running" in err, err
    rc, out, err = ctl("uploads", "retry", "1x")
    assert rc == 2 and "not an upload id" in err, err


def test_prsmctl__every_command__json_and_tables(mount_factory, ipfs_node, tmp_path):
    m = mount_factory(config=cfg(ipfs_node.api_url))
    mp = m.mountpoint
    st = os.stat(os.path.join(m.state_dir, "control.sock"))
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    os.mkdir(m.path("d"))
    data = os.urandom(3 * MiB)
    write(m.path("d", "a"), data)
    write(m.path("d", "b"), b"small")

    s = ctl_json("status", mp)
    assert s["ok"] and s["mountpoint"] == mp
    assert [n["state_name"] for n in s["stats"]["nodes"]] == ["up"], s["stats"]["nodes"]
    for k in ("pending", "running", "failed", "jobs"):
        assert k in s["uploads"], s["uploads"]
    assert s["cache"]["max_bytes"] > 0 and "hits" in s["cache"], s["cache"]
    rc, out = ctl_tty("status", mp)
    assert rc == 0 and "nodes" in out and " up " in out and "uploads" in out, out
    assert "pending" in out and "pins" in out and "cache" in out, out

    # uploads: fsync waited for them; nothing is left
    u = ctl_json("uploads", mp)
    assert u["uploads"] == [] and u["summary"]["pending"] == 0, u
    rc, out = ctl_tty("uploads", mp)
    assert rc == 0 and "no uploads pending" in out, out
    assert ctl_json("uploads", "retry", mp)["retried"] == 0
    rc, out, err = ctl("uploads", "retry", "12345", mp)
    assert rc == 1 and "no upload with this id is waiting to retry" in err, err

    # ls --cid: the CIDs the mount's xattrs give
    ls = ctl_json("ls", "--cid", m.path("d"))
    assert [e["name"] for e in ls] == ["a", "b"], ls
    assert ls[0]["cid"] == os.getxattr(m.path("d", "a"), "user.prsm.cid").decode()
    rc, out = ctl_tty("ls", "--cid", m.path("d", "a"))
    assert rc == 0 and out.split() == [ls[0]["cid"], "a"], out
    rc, out, err = ctl("ls", "--cid", m.path("d"))  # not a terminal: JSON
    assert rc == 0 and json.loads(out) == ls, out

    # cache: the read of a file not in memory
    with open(m.path("d", "a"), "rb") as f:
        assert f.read() == data
    c = ctl_json("cache", "stats", mp)
    assert c["bytes"] >= 0 and c["max_bytes"] > 0, c
    rc, out = ctl_tty("cache", "stats", mp)
    assert rc == 0 and " of " in out and "hits" in out, out
    g = ctl_json("cache", "gc", "--target", "0", mp)
    assert g["bytes"] == 0 and g["freed_bytes"] >= 0, g
    rc, out, err = ctl("cache", "gc", "--target", "lots", mp)
    assert rc == 2 and "not a size" in err, err
    rc, out, err = ctl("cache", "frob", mp)
    assert rc == 2 and "usage" in err, err

    # stats: two samples a fifth of a second apart, while a reader reads
    rc, out, err = ctl("--json", "stats", "--count", "2", "--interval", "0.2", mp)
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2 and "reads" in lines[0] and "hit_ratio" in lines[0], lines
    rc, out = ctl_tty("stats", "--count", "1", "--interval", "0.2", mp)
    assert rc == 0 and "reads/s" in out and len(out.strip().splitlines()) == 2, out

    # publish, pin, unpin, link, check
    pub = ctl_json("publish", m.path("d"))
    root = pub["cid"]
    rc, out, err = ctl("publish", m.path("d"))
    assert rc == 0 and out.strip() == root, (out, err)
    for cmd in (["pin", "not-a-cid", mp], ["unpin", "not-a-cid", mp],
                ["link", "not-a-cid", m.path("x")]):
        rc, out, err = ctl(*cmd)
        assert rc == 1 and err == "prsmctl: not a CID: 'not-a-cid'\n", (cmd, err)
    p = ctl_json("pin", ls[1]["cid"], mp)
    assert p["cid"] == ls[1]["cid"]
    assert ctl_json("unpin", ls[1]["cid"], mp)["cid"] == ls[1]["cid"]
    assert ctl_json("unpin", root, mp)["cid"] == root
    rc, out, err = ctl("unpin", root, mp)
    assert rc == 1 and "not a root that prsmctl publish pinned" in err, err
    lk = ctl_json("link", ls[0]["cid"], m.path("linked"))
    assert lk["cid"] == ls[0]["cid"] and lk["size"] == len(data), lk
    with open(m.path("linked"), "rb") as f:
        assert f.read() == data
    assert ctl_json("check", mp)["index"] == "ok"

    # cache verify: the linked file's blocks came from the node into the cache; one flipped
    # byte on disk is found and dropped, the file still reads right
    v = ctl_json("cache", "verify", mp)
    blocks = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(m.cache_dir, "blocks"))
              for f in fs]
    assert v["checked"] == len(blocks) >= 1 and v["dropped"] == 0, (v, blocks)
    with open(blocks[0], "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 1]))
    v = ctl_json("cache", "verify", mp)
    assert v["dropped"] == 1 and v["checked"] == len(blocks), v
    assert not os.path.exists(blocks[0])
    rc, out = ctl_tty("cache", "verify", mp)
    assert rc == 0 and "0 corrupt dropped" in out, out
    with open(m.path("linked"), "rb") as f:
        assert f.read() == data

    # --no-wait: returns once sent; the daemon publishes and pins anyway, and logs the CID
    os.mkdir(m.path("d2"))
    write(m.path("d2", "x"), b"no wait")
    rc, out, err = ctl("publish", "--no-wait", m.path("d2"))
    assert rc == 0 and "runs in the daemon" in err, (out, err)
    deadline = time.monotonic() + 30
    while "published '/d2' as bafy" not in m.stderr():
        assert time.monotonic() < deadline, m.stderr()
        time.sleep(0.2)
    want = m.stderr().split("published '/d2' as ")[1].split()[0]
    assert ctl_json("publish", m.path("d2"))["cid"] == want


def test_prsmctl__two_clients__status_answers_during_a_slow_publish(mount_factory, ipfs_node):
    px = RpcProxy(ipfs_node.api_url).start()
    try:
        m = mount_factory(config=cfg(px.url))
        os.mkdir(m.path("t"))
        write(m.path("t", "f"), os.urandom(MiB))
        px.delay["/api/v0/pin/add"] = 4.0
        result = {}

        def publish():
            result["p"] = ctl("--json", "publish", m.path("t"))

        t = threading.Thread(target=publish)
        started = time.monotonic()
        t.start()
        # a client that connects and says nothing holds a slot of its own, too
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(os.path.join(m.state_dir, "control.sock"))
        try:
            time.sleep(1.0)  # the publish is waiting for its pin now
            for _ in range(3):
                t0 = time.monotonic()
                s = ctl_json("status", m.mountpoint)
                assert s["ok"] and time.monotonic() - t0 < 2.0, time.monotonic() - t0
            assert t.is_alive(), "the publish did not wait for the slow pin"
        finally:
            idle.close()
        t.join(timeout=60)
        rc, out, err = result["p"]
        assert rc == 0, err
        assert json.loads(out)["cid"].startswith("bafy")
        assert time.monotonic() - started >= 4.0
        # on a terminal: what was sent so far while it waits, then the CID alone on stdout
        write(m.path("t", "g"), os.urandom(MiB))
        rc, out = ctl_tty("publish", m.path("t"))
        assert rc == 0 and "publishing: " in out and "blocks sent" in out, out
        assert out.strip().splitlines()[-1].startswith("bafy"), out
    finally:
        px.stop()


def test_prsmctl__failed_upload__listed_with_reason_then_retried(mount_factory, ipfs_node):
    px = RpcProxy(ipfs_node.api_url).start()
    try:
        m = mount_factory(config=cfg(px.url, retry_base_delay=30, retry_max_delay=60,
                                     timeout=5),
                          allow_stderr=("attempt",))
        px.refuse.add("/api/v0/pin/add")
        write_nosync = open(m.path("f"), "wb")
        write_nosync.write(os.urandom(MiB))
        write_nosync.close()
        deadline = time.monotonic() + 30
        while True:
            u = ctl_json("uploads", m.mountpoint)
            failed = [j for j in u["uploads"] if j["state"] == "failed"]
            if failed:
                break
            assert time.monotonic() < deadline, u
            time.sleep(0.2)
        j = failed[0]
        assert j["failed_attempts"] >= 1 and j["reason"] and j["retry_in_ms"] > 0, j
        assert ctl_json("status", m.mountpoint)["uploads"]["failed"] == 1
        rc, out = ctl_tty("uploads", m.mountpoint)
        assert rc == 0 and "failed" in out and str(j["id"]) in out, out
        # a second file fails the same way and is forgotten: gone from the list and from the
        # index (a restart would not resume it), its content still readable here
        with open(m.path("h"), "wb") as f:
            f.write(b"forget me")
        deadline = time.monotonic() + 30
        while True:
            u = ctl_json("uploads", m.mountpoint)["uploads"]
            other = [x for x in u if x["id"] != j["id"] and x["state"] == "failed"]
            if other:
                break
            assert time.monotonic() < deadline, u
            time.sleep(0.2)
        rc, out, err = ctl("uploads", "forget", m.mountpoint)
        assert rc == 2 and "usage" in err, err
        assert ctl_json("uploads", "forget", str(other[0]["id"]), m.mountpoint)["forgotten"] == \
            other[0]["id"]
        deadline = time.monotonic() + 10
        while any(x["id"] == other[0]["id"] for x in ctl_json("uploads", m.mountpoint)["uploads"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ctl_json("status", m.mountpoint)["uploads"]["jobs"] == 1
        with open(m.path("h"), "rb") as f:
            assert f.read() == b"forget me"
        rc, out, err = ctl("uploads", "forget", str(other[0]["id"]), m.mountpoint)
        assert rc == 1 and "no upload with this id" in err, err

        px.refuse.clear()
        r = ctl_json("uploads", "retry", str(j["id"]), m.mountpoint)
        assert r["retried"] == 1, r
        deadline = time.monotonic() + 20  # well before the 30 s backoff would end
        while ctl_json("uploads", m.mountpoint)["uploads"]:
            assert time.monotonic() < deadline, ctl_json("uploads", m.mountpoint)
            time.sleep(0.2)
    finally:
        px.stop()


def test_prsmctl__long_state_dir__control_socket_works(mount_factory, ipfs_node, tmp_path):
    deep = str(tmp_path / ("s" * 60) / ("t" * 60) / ("u" * 60) / "state")
    assert len(deep) >= 200
    os.makedirs(os.path.dirname(deep))
    m = mount_factory(config=cfg(ipfs_node.api_url, state_dir=deep))
    sock = os.path.join(deep, "control.sock")
    assert len(sock) > 108
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert ctl_json("status", m.mountpoint)["state_dir"] == deep
    assert ctl_json("-s", sock, "status")["state_dir"] == deep


def test_prsmctl__reload_and_sighup__log_level_live_others_named(mount_factory, ipfs_node):
    m = mount_factory(config=cfg(ipfs_node.api_url, log_level="notice"))
    r = ctl_json("reload", m.mountpoint)
    assert r["applied"] == [] and r["needs_restart"] == [], r

    def rewrite(**changes):
        c = dict(m.config)
        c.update(changes)
        with open(m.config_path, "w") as f:
            json.dump(c, f)

    rewrite(log_level="debug", timeout=12, gateway_nodes=[ipfs_node.gateway_url], cache_ttl=100)
    r = ctl_json("reload", m.mountpoint)
    assert sorted(r["applied"]) == ["gateway_nodes", "log_level", "timeout"], r
    assert r["needs_restart"] == ["cache_ttl"], r
    rc, out = ctl_tty("reload", m.mountpoint)
    assert rc == 0 and "cache_ttl" in out and "needs a remount" in out, out

    # SIGHUP: the same reload; the mount stays. From log_level error on, the warnings a
    # reload logs for keys that need a remount are not written any more
    rewrite(log_level="error", timeout=13)
    os.kill(m.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload: log_level error from now on" not in m.stderr():
        assert time.monotonic() < deadline, m.stderr()
        time.sleep(0.1)
    assert m.alive() and ctl_json("status", m.mountpoint)["ok"]
    quiet = m.stderr().count("needs a remount")
    rewrite(log_level="error", timeout=13, cache_ttl=200)
    r = ctl_json("reload", m.mountpoint)
    assert "cache_ttl" in r["needs_restart"] and r["applied"] == [], r
    assert m.stderr().count("needs a remount") == quiet, m.stderr()

    # a broken file: refused with the reason, the running config stays
    with open(m.config_path, "w") as f:
        f.write('{"timeout": 10, "no_such_key": 1}')
    rc, out, err = ctl("reload", m.mountpoint)
    assert rc == 1 and "no_such_key" in err and "unknown key" in err, err
    assert m.alive()


def test_prsmctl__control_group__socket_0660_for_the_group(mount_factory, ipfs_node, tmp_path):
    import grp
    group = grp.getgrnam("nogroup")
    m = mount_factory(config=cfg(ipfs_node.api_url, control_group="nogroup"))
    st = os.stat(os.path.join(m.state_dir, "control.sock"))
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == group.gr_gid, (oct(st.st_mode),
                                                                              st.st_gid)
    assert ctl_json("status", m.mountpoint)["ok"]
    # a group this host does not have: refused before anything is mounted
    bad = dict(cfg(ipfs_node.api_url, control_group="no-such-group-prsmfs"),
               state_dir=str(tmp_path / "s2"), cache_dir=str(tmp_path / "c2"))
    with open(tmp_path / "bad.json", "w") as f:
        json.dump(bad, f)
    os.mkdir(tmp_path / "mnt2")
    p = subprocess.run([prsmfs_binary(), "-f", "--config=%s" % (tmp_path / "bad.json"),
                        str(tmp_path / "mnt2")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert "control_group 'no-such-group-prsmfs': no such group" in p.stderr, p.stderr
    with open("/proc/mounts") as f:
        assert str(tmp_path / "mnt2") not in f.read()


def test_prsmctl__fsck__orphans_repaired_missing_staging_reported(mount_factory, tmp_path):
    from ipfsnode import free_ports
    dead = "http://127.0.0.1:%d" % free_ports(1)[0]  # uploads stay pending
    m = mount_factory(config=cfg(dead, timeout=5), allow_stderr=("fsck",))
    with open(m.path("f"), "wb") as f:
        f.write(b"staged, not uploaded")
    with open(m.path("g"), "wb") as f:
        f.write(b"another")
    r = ctl_json("fsck", m.mountpoint)
    assert r["index"] == "ok" and r["staging"]["staged"] == 2, r
    assert r["staging"]["orphans"] == 0 and r["staging"]["missing"] == 0, r

    sd = m.staging_dir()
    old = time.time() - 3600
    for name in ("999999.1", "junk"):  # a writer that never closed, and a stray file
        with open(os.path.join(sd, name), "wb") as f:
            f.write(b"x" * 100)
        os.utime(os.path.join(sd, name), (old, old))
    with open(os.path.join(sd, "999998.1"), "wb") as f:  # too recent to judge
        f.write(b"y")
    rc, out, err = ctl("fsck", m.mountpoint)
    assert rc == 1, (out, err)  # something is wrong and was not repaired
    r = json.loads(out)["staging"]
    assert r["orphans"] == 2 and r["orphan_bytes"] == 200 and r["young"] == 1, r
    assert r["removed"] == 0 and os.path.exists(os.path.join(sd, "junk"))
    rc, out = ctl_tty("fsck", "--repair", m.mountpoint)
    assert rc == 0 and "2 named by nothing" in out and "2 removed" in out, out
    assert sorted(os.listdir(sd)).count("junk") == 0 and "999999.1" not in os.listdir(sd)
    assert "999998.1" in os.listdir(sd)
    assert ctl_json("fsck", m.mountpoint)["staging"]["staged"] == 2

    # the staged content of g is gone: its upload can never succeed
    ino = os.stat(m.path("g")).st_ino
    gone = [n for n in os.listdir(sd) if n.startswith("%d." % ino)]
    assert len(gone) == 1, os.listdir(sd)
    os.unlink(os.path.join(sd, gone[0]))
    rc, out, err = ctl("fsck", m.mountpoint)
    assert rc == 1 and json.loads(out)["staging"]["missing"] == 1, (out, err)
    assert "fsck: inode %d" % ino in m.stderr()
