# SPDX-License-Identifier: GPL-2.0-or-later
"""Pins follow the namespace (issue 15), on a real mount against a real js-ipfs node: the
node's recursive pins are exactly the roots some path, job or published tree refers to. A
rewrite moves the pin, the last unlink drops it, a published root stays until `prsmctl
unpin`, linked content the node pinned itself is never unpinned, and an unpin owed when the
daemon is killed is sent after the restart."""
import json
import os
import random
import subprocess
import time

import pytest
from mount import fsync_path, tool_binary
from pinsvc import PinService
from rpcproxy import RpcProxy

MiB = 1 << 20


def cfg(url, **extra):
    c = {"rpc_nodes": [url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


def recursive_pins(node):
    """The node's recursive pins, CIDv1 in base32 (as user.prsm.cid prints them)."""
    res = node.rpc_json("pin/ls", [("type", "recursive"), ("cid-base", "base32")], timeout=60)
    return set((res or {}).get("Keys") or {})


def cid_of(path):
    return os.getxattr(path, "user.prsm.cid").decode()


def prsmctl(*args):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def pin_stats(m):
    """The status's pin counters (None when the daemon has none)."""
    rc, out, err = prsmctl("status", m.mountpoint)
    assert rc == 0, err
    return json.loads(out)["stats"].get("pins")


def wait_drained(m, node, expect, baseline=frozenset(), timeout=90):
    """Waits until no unpin is owed and the node's recursive pins (beyond baseline) are
    expect; returns them as they are at the end."""
    deadline = time.monotonic() + timeout
    while True:
        st = pin_stats(m)
        pins = recursive_pins(node) - set(baseline)
        if st is not None and st["owed"] == 0 and pins == set(expect):
            return pins
        if time.monotonic() >= deadline:
            return pins
        time.sleep(0.3)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.timeout(600)
def test_pins__writes_rewrites_unlinks__node_pins_exactly_the_live_roots(ipfs_nodes_factory,
                                                                          mount_factory):
    (node,) = ipfs_nodes_factory(1)
    baseline = recursive_pins(node)
    m = mount_factory(config=cfg(node.api_url))
    rnd = random.Random(15)
    sizes = [rnd.choice([0, 1, 700, 40000, 300000, MiB + 17, 3 * MiB]) for _ in range(20)]
    names = ["f%02d" % i for i in range(20)]
    for name, size in zip(names, sizes):
        write(m.path(name), os.urandom(size))
    rewritten = names[:10]
    for _ in range(2):  # no fsync in between: uploads superseded, some after their pin
        for name in rewritten:
            write(m.path(name), os.urandom(rnd.choice([5, 9000, 2 * MiB + 3])))
    # the same bytes in two files (one CID, one pin), and a hard link
    same = os.urandom(50000)
    write(m.path("same1"), same)
    write(m.path("same2"), same)
    os.link(m.path("f15"), m.path("f15.link"))
    for name in names + ["same1", "same2"]:
        fsync_path(m.path(name))
    deleted = ["f03", "f08", "f12", "f15", "same1"]  # rewritten, plain, hard-linked, dedup'd
    for name in deleted:
        os.unlink(m.path(name))
    live = sorted(n for n in os.listdir(m.mountpoint) if not n.startswith("."))
    assert len(live) == 23 - len(deleted)
    for name in live:
        fsync_path(m.path(name))
    expect = {cid_of(m.path(n)) for n in live}  # empty files share one CID
    pins = wait_drained(m, node, expect, baseline)
    assert pins == expect, ("extra", sorted(pins - expect), "missing", sorted(expect - pins))
    st = pin_stats(m)
    assert st["held"] == len(expect) and st["owed"] == 0, st
    assert st["failures"] == 0, st
    # the files still read back whole, from the node (pins moved, blocks of live roots kept)
    assert open(m.path("same2"), "rb").read() == same


@pytest.mark.timeout(600)
def test_pins__published_root_kept_until_unpin__linked_cid_never_unpinned(ipfs_nodes_factory,
                                                                         mount_factory):
    (node,) = ipfs_nodes_factory(1)
    linked_data = os.urandom(200000)
    linked = node.add(linked_data, cid_version=1, raw_leaves=True, cid_base="base32")
    assert linked in recursive_pins(node)  # the node's own pin, not prsmfs's
    m = mount_factory(config=cfg(node.api_url))
    os.mkdir(m.path("pub"))
    for i in range(3):
        write(m.path("pub", "p%d" % i), os.urandom(30000 + i))
        fsync_path(m.path("pub", "p%d" % i))
    files = {cid_of(m.path("pub", "p%d" % i)) for i in range(3)}
    rc, out, err = prsmctl("--json", "publish", m.path("pub"))
    assert rc == 0, err
    root = json.loads(out)["cid"]
    rc, out, err = prsmctl("link", linked, m.path("linked"))
    assert rc == 0, err
    assert open(m.path("linked"), "rb").read() == linked_data
    for i in range(3):
        os.unlink(m.path("pub", "p%d" % i))
    os.rmdir(m.path("pub"))
    os.unlink(m.path("linked"))
    pins = wait_drained(m, node, {root, linked})
    assert pins == {root, linked}, (pins, root, linked, files)
    # the published tree still reads from the node: its files are pinned under its root
    listing = node.rpc_json("ls", [("arg", root)], timeout=60)
    assert sorted(ln["Name"] for ln in listing["Objects"][0]["Links"]) == ["p0", "p1", "p2"]

    rc, out, err = prsmctl("unpin", root, m.mountpoint)
    assert rc == 0, err
    assert json.loads(out)["still_referenced"] is False
    pins = wait_drained(m, node, {linked})
    assert pins == {linked}, pins
    rc, out, err = prsmctl("unpin", root, m.mountpoint)
    assert rc != 0 and "not a root that prsmctl publish pinned" in err, (rc, out, err)


@pytest.mark.timeout(600)
def test_pins__kill9_with_unpins_owed__sent_after_the_restart(ipfs_nodes_factory,
                                                              mount_factory):
    """The node refuses pin/rm (through a proxy) while a file is rewritten and another is
    deleted: their old roots stay pinned (an extra pin, never a missing one), the daemon is
    killed with the unpins owed, and the restarted daemon sends them."""
    (node,) = ipfs_nodes_factory(1)
    px = RpcProxy(node.api_url).start()
    try:
        m = mount_factory(config=cfg(px.url, retry_base_delay=0.1, retry_max_delay=1))
        write(m.path("a"), os.urandom(100000))
        write(m.path("b"), os.urandom(2 * MiB + 1))
        fsync_path(m.path("a"))
        fsync_path(m.path("b"))
        old_a, old_b = cid_of(m.path("a")), cid_of(m.path("b"))
        px.refuse.add("/api/v0/pin/rm")
        write(m.path("a"), os.urandom(100001))
        fsync_path(m.path("a"))
        new_a = cid_of(m.path("a"))
        os.unlink(m.path("b"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = pin_stats(m)
            rms = [r for r in px.requests if r[0] == "/api/v0/pin/rm"]
            if st is not None and st["owed"] == 2 and st["failures"] >= 1 and rms:
                break
            time.sleep(0.2)
        assert st is not None and st["owed"] == 2 and rms, (st, rms)
        m.kill()
        assert recursive_pins(node) == {old_a, old_b, new_a}  # extra pins, none missing
        px.refuse.clear()
        m.restart()
        pins = wait_drained(m, node, {new_a})
        assert pins == {new_a}, pins
        assert pin_stats(m)["unpins"] == 2
    finally:
        px.stop()


@pytest.mark.timeout(600)
def test_pins__pinning_service__old_roots_deleted_there_too(ipfs_nodes_factory, mount_factory,
                                                            tmp_path):
    """With a pinning service, a moved or dropped pin is deleted there as well (GET /pins by
    cid and name, DELETE /pins/{requestid}), and only prsmfs's own pins of that CID."""
    (node,) = ipfs_nodes_factory(1)
    token = tmp_path / "token"
    token.write_text("bearer:s3cret\n")
    os.chmod(token, 0o600)
    svc = PinService(node, token="s3cret").start()
    try:
        m = mount_factory(config=cfg(node.api_url, pinning_services=[
            {"url": svc.url, "auth_file": str(token)}]))
        write(m.path("a"), os.urandom(20000))
        write(m.path("b"), os.urandom(30000))
        fsync_path(m.path("a"))
        fsync_path(m.path("b"))
        old_a, b = cid_of(m.path("a")), cid_of(m.path("b"))
        with svc.lock:  # someone else's pin of the same CID, under another name
            svc.pins["theirs"] = {"cid": b, "name": "not prsmfs", "status": "pinned",
                                  "polls": 0}
        write(m.path("a"), os.urandom(20001))
        fsync_path(m.path("a"))
        new_a = cid_of(m.path("a"))
        os.unlink(m.path("b"))
        pins = wait_drained(m, node, {new_a})
        assert pins == {new_a}, pins
        with svc.lock:
            left = sorted((p["cid"], p["name"], p["status"]) for p in svc.pins.values())
        assert left == sorted([(new_a, "prsmfs " + new_a, "pinned"), (b, "not prsmfs",
                                                                     "pinned")]), left
        assert svc.deleted == 2 and svc.unauthorized == 0
        assert old_a != new_a
    finally:
        svc.stop()
