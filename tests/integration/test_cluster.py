# SPDX-License-Identifier: GPL-2.0-or-later
"""IPFS Cluster replication on a real mount against a fake cluster REST API that records every
request and checks it against the documented contract: the pin after an upload and
`prsmctl pin` go to POST /pins/{cid} with replication-min/max and a name, with the basic auth
header, and are polled with GET /pins/{cid} until pinned on replication_min peers; a refused
pin (500) and a hung status poll (past `timeout`) keep the upload pending and retried, never
lost; `prsmctl unpin` sends DELETE /pins/{cid}; a world-readable credentials file is refused."""
import base64
import json
import os
import subprocess
import time

import pytest
from fakecluster import FakeCluster
from mount import fsync_path, tool_binary


def ctl(*args):
    p = subprocess.run([tool_binary("prsmctl"), *args], text=True, capture_output=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def uploads(m):
    rc, out, err = ctl("--json", "uploads", m.mountpoint)
    assert rc == 0, err
    return json.loads(out)["uploads"]


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def cluster_cfg(node, fc, auth, **extra):
    c = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 5,
         "cluster_api": fc.url, "cluster_auth_file": str(auth), "replication_min": 2,
         "replication_max": 3}
    c.update(extra)
    return c


def wait_pinned(fc, m, name, timeout=60):
    """Until the file's upload is done (its CID known), the cluster holds that CID and no
    upload is left; its CID."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cid = os.getxattr(m.path(name), "user.prsm.cid").decode()
        except OSError:
            cid = None  # not uploaded yet
        with fc.lock:
            held = cid in fc.pins
        if held and not uploads(m):
            return cid
        assert time.monotonic() < deadline, (uploads(m), m.stderr())
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_cluster__pins_follow_the_contract__refusals_and_hangs_retried(ipfs_node, mount_factory,
                                                                       tmp_path):
    auth = tmp_path / "cluster.auth"
    auth.write_text("basic:admin:s3cret\n")
    os.chmod(auth, 0o600)
    want_auth = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    fc = FakeCluster("admin", "s3cret", peers=4, steps=2).start()
    try:
        m = mount_factory(config=cluster_cfg(ipfs_node, fc, auth))
        # the pin after an upload: fsync returns once the cluster reports 2 peers pinned
        put(m.path("a"), os.urandom(300000))
        fsync_path(m.path("a"))
        a = os.getxattr(m.path("a"), "user.prsm.cid").decode()
        reqs = fc.requests_for(a)
        assert reqs[0][0] == "POST", reqs
        assert reqs[0][2] == {"replication-min": "2", "replication-max": "3",
                              "name": "prsmfs " + a}, reqs[0]
        assert all(r[3] == want_auth for r in reqs), reqs
        gets = [r for r in reqs[1:] if r[0] == "GET"]
        # steps=2: pin_queued, pinning, pinning, pinned: polled until pinned, not after
        assert len(gets) == 4 and len(reqs) == 5, reqs
        with fc.lock:
            assert fc.pins[a]["allocations"] == fc.peers[:3]

        # refused twice (500): the upload stays pending and is retried until it holds
        fc.fail_posts = 2
        put(m.path("b"), os.urandom(200000))
        os.close(os.open(m.path("b"), os.O_RDONLY))
        b = wait_pinned(fc, m, "b")
        assert "consensus not ready" in m.stderr()
        posts = [r for r in fc.requests_for(b) if r[0] == "POST"]
        assert len(posts) == 3, fc.requests_for(b)
        assert "IPFS Cluster %s refused to pin" % fc.url in m.stderr()

        # a status poll that hangs past `timeout` (5 s): the pin fails, is retried, holds
        fc.hang_polls = 8.0
        put(m.path("c"), os.urandom(100000))
        os.close(os.open(m.path("c"), os.O_RDONLY))
        deadline = time.monotonic() + 60
        failed = "on IPFS Cluster %s failed" % fc.url
        while failed not in m.stderr():
            assert time.monotonic() < deadline, m.stderr()
            time.sleep(0.2)
        assert uploads(m), "the upload whose pin timed out was dropped"
        fc.hang_polls = 0.0
        c = wait_pinned(fc, m, "c", timeout=90)
        assert len([r for r in fc.requests_for(c) if r[0] == "POST"]) >= 2

        # prsmctl pin and unpin of a CID the node has
        d = ipfs_node.add(os.urandom(5000), cid_version=1, raw_leaves=True, pin=False,
                          cid_base="base32")
        rc, out, err = ctl("pin", d, m.mountpoint)
        assert rc == 0, err
        assert [r[0] for r in fc.requests_for(d)][:2] == ["POST", "GET"]
        rc, out, err = ctl("unpin", d, m.mountpoint)
        assert rc == 0, err
        deadline = time.monotonic() + 30
        while d not in fc.deleted:
            assert time.monotonic() < deadline, fc.requests_for(d)
            time.sleep(0.2)
        assert fc.requests_for(d)[-1][0] == "DELETE"
        assert not fc.violations, fc.violations
        assert "s3cret" not in m.stderr()
    finally:
        fc.stop()


def test_cluster__credentials_readable_by_others__refused_at_start(ipfs_node, mount_factory,
                                                                   tmp_path):
    auth = tmp_path / "cluster.auth"
    auth.write_text("basic:admin:s3cret\n")
    os.chmod(auth, 0o644)
    fc = FakeCluster("admin", "s3cret").start()
    try:
        m = mount_factory(config=cluster_cfg(ipfs_node, fc, auth), start=False)
        with open(m.config_path, "w") as f:
            json.dump(m.config, f)
        p = subprocess.run(m.command(), capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "accessible by group or others" in p.stderr and "chmod 600" in p.stderr, p.stderr
        # and a cluster key without the cluster: refused, named
        bad = dict(m.config)
        del bad["cluster_api"]
        with open(m.config_path, "w") as f:
            json.dump(bad, f)
        p = subprocess.run(m.command(), capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "need 'cluster_api'" in p.stderr, p.stderr
    finally:
        fc.stop()
