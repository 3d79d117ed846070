# SPDX-License-Identifier: GPL-2.0-or-later
"""Uploads through the node pool against real js-ipfs nodes: a multi-block DAG built by the
UnixFS builder, put in parallel and pinned on two replicas (the nodes' own pin/ls and cat
agree); the write node killed mid-upload, the resumed session on another node sending only
the blocks that node lacks; a pin through a real Pinning Service API server."""
import json
import os
import subprocess
import time

import pytest
from mount import build_binary
from pinsvc import PinService

MiB = 1 << 20
ENOTCONN = 107


def netput(args, **kw):
    return subprocess.run([build_binary("tests/support/netput")] + args, capture_output=True,
                          **kw)


def report(r):
    assert r.stdout, r.stderr.decode()
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def node_root(node, data, chunk):
    """The root CID as the node itself computes it for these bytes (and prints it)."""
    return node.add(data, cid_version=1, raw_leaves=True, chunker="size-%d" % chunk,
                    only_hash=True)


def pinned(node, cid):
    """True when the node itself lists cid (any base) as pinned recursively."""
    try:
        res = node.rpc_json("pin/ls", [("arg", cid), ("type", "recursive")], timeout=30)
    except Exception:  # the node answers an error for a CID it has not pinned
        return False
    return len((res or {}).get("Keys", {})) == 1


@pytest.mark.timeout(600)
def test_parallel_upload__pinned_on_two_replicas__nodes_agree(ipfs_nodes_factory, tmp_path):
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    data = os.urandom(24 * MiB + 12345)
    path = tmp_path / "file"
    path.write_bytes(data)
    chunk = 256 * 1024
    t0 = time.monotonic()
    r = netput(["--rpc", n1.api_url, "--rpc", n2.api_url, "--parallel", "5", "--replicas", "2",
                "--chunk", str(chunk), str(path)], timeout=300)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr.decode()
    rep = report(r)
    assert rep["blocks"] == 98  # 97 leaves + root
    assert len(rep["sessions"]) == 1 and rep["sessions"][0]["sent"] == rep["blocks"]
    assert rep["puts"] == rep["blocks"] and rep["put_skips"] == 0
    assert rep["put_bytes"] > len(data)
    assert rep["pins"] == 2 and rep["pin_failures"] == 0
    print("uploaded %d blocks (%.1f MiB) and pinned on 2 nodes in %.2f s (%.1f MiB/s, "
          "ASan build)" % (rep["blocks"], rep["put_bytes"] / MiB, elapsed,
                           rep["put_bytes"] / MiB / elapsed))
    # the nodes' own view: same root, pinned recursively on both, same bytes back
    root = node_root(n1, data, chunk)
    assert root == node_root(n2, data, chunk)
    assert pinned(n1, root) and pinned(n2, root)
    assert n2.rpc("cat", [("arg", root)], timeout=120) == data
    refs = [ln for ln in n2.rpc("refs", [("arg", root), ("recursive", "true")])
            .decode().splitlines() if ln.strip()]
    assert len(refs) == rep["blocks"] - 1


@pytest.mark.timeout(600)
def test_write_node_killed_mid_upload__resumed_elsewhere_sends_only_missing(
        ipfs_nodes_factory, tmp_path):
    n1, n2 = ipfs_nodes_factory(2)  # offline: n2 can get blocks only from us
    chunk = 256 * 1024
    data = os.urandom(64 * MiB)
    path = tmp_path / "file"
    path.write_bytes(data)
    # n2 already holds the first 40 leaves (an earlier version of the file, say): raw leaves
    # of the same bytes have the same CIDs
    k = 40
    n2.add(data[:k * chunk], cid_version=1, raw_leaves=True, chunker="size-%d" % chunk)
    log = tmp_path / "log"
    p = subprocess.Popen([build_binary("tests/support/netput"), "--rpc", n1.api_url, "--rpc",
                          n2.api_url, "--parallel", "4", "--chunk", str(chunk), "--log",
                          str(log), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            lines = log.read_text().splitlines() if log.exists() else []
            if len(lines) >= 30:
                break
            assert p.poll() is None, "netput ended before the kill: %s" % p.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t_kill = time.monotonic_ns()
        n1.kill()
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode()
    rep = json.loads(out.decode())
    s1, s2 = rep["sessions"]
    assert s1["node"] == n1.api_url and s2["node"] == n2.api_url
    assert s1["result"] == -ENOTCONN
    assert 30 <= s1["sent"] < rep["blocks"]
    # the resumed session transferred exactly the blocks n2 lacked
    assert s2["skipped"] == k
    assert s2["sent"] == rep["blocks"] - k
    assert s2["result"] == 0
    assert rep["put_skips"] == k
    after = [int(ln.split()[0]) for ln in log.read_text().splitlines() if ln.split()[1] == "1"]
    print("write node killed after %d of %d blocks; resumed on the other node %.0f ms later: "
          "%d sent, %d already there" % (s1["sent"], rep["blocks"],
                                         (min(after) - t_kill) / 1e6, s2["sent"], s2["skipped"]))
    # 256 leaves: js-ipfs's own add would use 174 links per node, so check our root directly
    assert pinned(n2, rep["root"])
    assert n2.rpc("cat", [("arg", rep["root"])], timeout=120) == data


@pytest.mark.timeout(600)
def test_pinning_service__real_node_pins__polled_until_pinned(ipfs_nodes_factory, tmp_path):
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    data = os.urandom(3 * MiB)
    path = tmp_path / "file"
    path.write_bytes(data)
    token = tmp_path / "token"
    token.write_text("bearer:s3cret\n")
    os.chmod(token, 0o600)
    bad = tmp_path / "bad"
    bad.write_text("bearer:wrong\n")
    os.chmod(bad, 0o600)
    svc = PinService(n2, token="s3cret").start()  # pins on n2, which fetches from n1
    try:
        r = netput(["--rpc", n1.api_url, "--pin-service", svc.url, "--auth", str(token),
                    "--chunk", "262144", str(path)], timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        rep = report(r)
        assert rep["pins"] == 2  # the write node and the service
        assert svc.created == 1 and svc.polls >= 2 and svc.unauthorized == 0
        assert [p["status"] for p in svc.pins.values()] == ["pinned"]
        root = node_root(n1, data, 262144)
        assert pinned(n2, root)
        assert n2.rpc("cat", [("arg", root)], timeout=120) == data
        # a wrong token: the service refuses, and the upload is not reported as pinned
        r = netput(["--rpc", n1.api_url, "--pin-service", svc.url, "--auth", str(bad),
                    "--chunk", "262144", str(path)], timeout=300)
        assert r.returncode != 0
        assert report(r)["pin_failures"] == 1
        assert svc.unauthorized == 1
    finally:
        svc.stop()
