# SPDX-License-Identifier: GPL-2.0-or-later
"""Live reload (SIGHUP, prsmctl reload) on real mounts: a node list changed under reads (A to
A+B, A killed, reads served by B; lists swapped while readers run), a timeout change that
the next read obeys, and a bad config refused with its reason while the running one stays."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from mount import tool_binary

MiB = 1 << 20
UP = 0


def prsmctl(*args, check=True):
    """prsmctl's result; with check, it must have succeeded."""
    p = subprocess.run([tool_binary("prsmctl"), *args], text=True, capture_output=True,
                       timeout=120)
    assert not check or p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def status(m):
    return json.loads(prsmctl("--json", "status", m.mountpoint).stdout)


def nodes_of(m):
    return {n["url"]: n["state"] for n in status(m)["stats"]["nodes"]}


def rewrite(m, **changes):
    c = dict(m.config)
    c.update(changes)
    m.config = c
    with open(m.config_path, "w") as f:
        json.dump(c, f)


def reload(m):
    return json.loads(prsmctl("--json", "reload", m.mountpoint).stdout)


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def add_both(nodes, data):
    opts = dict(cid_version=1, raw_leaves=True, chunker="size-1048576", pin=False)
    cids = {n.add(data, **opts) for n in nodes}
    assert len(cids) == 1
    return cids.pop()


@pytest.mark.timeout(600)
def test_reload__node_a_then_a_and_b__a_killed__reads_from_b(ipfs_nodes_factory, mount_factory):
    a, b = ipfs_nodes_factory(2)
    files = [os.urandom(3 * MiB + i) for i in range(3)]
    cids = [add_both([a, b], d) for d in files]
    m = mount_factory(config={"rpc_nodes": [a.api_url], "gateway_nodes": [], "timeout": 30})
    for i, c in enumerate(cids):
        prsmctl("link", c, m.path("f%d" % i))
    with open(m.path("f0"), "rb") as f:
        assert f.read() == files[0]

    rewrite(m, rpc_nodes=[a.api_url, b.api_url])
    r = reload(m)
    assert r["applied"] == ["rpc_nodes"] and r["needs_restart"] == [], r
    wait_for(lambda: nodes_of(m) == {a.api_url: UP, b.api_url: UP}, "B not up after reload")
    assert "reload: node list now 2 node(s): 1 added" in m.stderr()

    # a reader runs while the list changes under it (B, A+B, B, ...), each read a file never
    # read before (a fetch from a node): every read verified, no fetch loses its node (the
    # sanitizer would report a use after free at unmount)
    small = [os.urandom(200 * 1024 + i) for i in range(24)]
    small_cids = [add_both([a, b], d) for d in small]
    for i, c in enumerate(small_cids):
        prsmctl("link", c, m.path("s%d" % i))
    stop, errors, reads = threading.Event(), [], [0]

    def reader():
        for i in range(len(small)):
            if stop.is_set():
                break
            try:
                with open(m.path("s%d" % i), "rb") as f:
                    if f.read() != small[i]:
                        errors.append("s%d: wrong bytes" % i)
                reads[0] += 1
            except OSError as e:
                errors.append("s%d: %r" % (i, e))
            time.sleep(0.05)

    th = threading.Thread(target=reader)
    th.start()
    try:
        for i in range(8):
            rewrite(m, rpc_nodes=[b.api_url] if i % 2 == 0 else [a.api_url, b.api_url])
            assert reload(m)["applied"] == ["rpc_nodes"]
            time.sleep(0.15)
    finally:
        stop.set()
        th.join(timeout=120)
    assert not errors, errors
    assert reads[0] >= 8, reads
    wait_for(lambda: nodes_of(m) == {a.api_url: UP, b.api_url: UP}, "A+B not back")

    # A dies: the files never read come from B
    a.kill()
    for i in (1, 2):
        with open(m.path("f%d" % i), "rb") as f:
            assert f.read() == files[i]
    assert m.alive()


class HungNode:
    """Accepts connections and never answers (a node that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@pytest.mark.timeout(300)
def test_reload__timeout_change__next_read_obeys_it(ipfs_node, mount_factory):
    data = os.urandom(4 * MiB)
    cid = ipfs_node.add(data, cid_version=1, raw_leaves=True, chunker="size-1048576", pin=False)
    hung = HungNode()
    try:
        m = mount_factory(config={"rpc_nodes": [ipfs_node.api_url], "gateway_nodes": [],
                                  "timeout": 60})
        prsmctl("link", cid, m.path("f"))  # the root block is cached, the leaves are not
        rewrite(m, rpc_nodes=[hung.url], timeout=1.5)
        r = reload(m)
        assert sorted(r["applied"]) == ["rpc_nodes", "timeout"], r
        assert "timeout 1.5 s" in m.stderr()
        t0 = time.monotonic()
        with pytest.raises(OSError):
            with open(m.path("f"), "rb") as f:
                f.read()
        took = time.monotonic() - t0
        print("read on a hung node after a reload to timeout 1.5 s failed after %.2f s" % took)
        assert 1.2 <= took < 10, took  # the old 60 s would still be waiting

        # back to the good node and a long timeout: the same read works
        rewrite(m, rpc_nodes=[ipfs_node.api_url], timeout=30)
        assert sorted(reload(m)["applied"]) == ["rpc_nodes", "timeout"]
        wait_for(lambda: nodes_of(m) == {ipfs_node.api_url: UP}, "node not up")
        # the store fails a block that just failed again at once for 1 s (FAIL_HOLD_NS, so
        # the kernel's page-by-page retries of a failed readahead do not each wait out the
        # timeout); a reload does not clear that memory
        time.sleep(1.2)
        with open(m.path("f"), "rb") as f:
            assert f.read() == data
    finally:
        hung.close()


@pytest.mark.timeout(300)
def test_reload__bad_config__refused_old_config_kept(ipfs_node, mount_factory, tmp_path):
    data = os.urandom(2 * MiB + 1)
    cid = ipfs_node.add(data, cid_version=1, raw_leaves=True, pin=False)
    m = mount_factory(config={"rpc_nodes": [ipfs_node.api_url], "gateway_nodes": [],
                              "timeout": 30, "log_level": "notice"})
    prsmctl("link", cid, m.path("f"))
    before = nodes_of(m)

    # an auth file others can read: the node list is refused, and with it the whole reload
    auth = tmp_path / "token"
    auth.write_text("bearer:secret-token\n")
    os.chmod(auth, 0o644)
    rewrite(m, rpc_nodes=[{"url": "http://127.0.0.1:9", "auth_file": str(auth)}], timeout=5,
            log_level="debug")
    p = prsmctl("reload", m.mountpoint, check=False)
    assert p.returncode == 1, p.stdout
    assert "the new node list cannot be used" in p.stderr, p.stderr
    assert "secret-token" not in p.stderr + m.stderr()
    assert nodes_of(m) == before
    assert "log_level debug from now on" not in m.stderr()

    # a file that is not JSON: refused with the reason, nothing changes
    with open(m.config_path, "w") as f:
        f.write('{"rpc_nodes": [')
    p = prsmctl("reload", m.mountpoint, check=False)
    assert p.returncode == 1 and m.config_path in p.stderr, p.stderr
    # SIGHUP the same: the log says why, the mount stays
    os.kill(m.proc.pid, signal.SIGHUP)
    wait_for(lambda: m.stderr().count("the running config stays") >= 3, "no refusal logged")
    assert nodes_of(m) == before and m.alive()
    with open(m.path("f"), "rb") as f:
        assert f.read() == data

    # a key that cannot change live: named, left as it was; the live ones still apply
    rewrite(m, rpc_nodes=[ipfs_node.api_url], timeout=30, log_level="notice",
            cache_dir=str(tmp_path / "other-cache"), stall_timeout=0.7)
    r = reload(m)
    assert r["needs_restart"] == ["cache_dir"] and r["applied"] == ["stall_timeout"], r
    assert "reload: 'cache_dir' changed: needs a remount, left as it was" in m.stderr()
    assert not os.path.exists(str(tmp_path / "other-cache"))  # the cache stayed where it was
