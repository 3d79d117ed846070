# SPDX-License-Identifier: GPL-2.0-or-later
"""The test-node harness itself (tests/support/ipfsnode.py): real js-ipfs nodes start,
exchange blocks over bitswap, reproduce the 1 MiB-of-zeros vector, restart on the same port
after a kill, add directory trees like the node's own CLI, and are stopped by PID.

    /usr/bin/python3 -m pytest -v tests/integration/test_ipfsnode.py
"""
import json
import os
import subprocess
import sys
import time

import pytest

SUPPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

import ipfsnode  # noqa: E402

ZEROS_1MIB_CID = "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU"  # ipfs.md §16


def gone(pid):
    """Neither the process nor its process group (the daemon leads one) exists."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
            return False
        except ProcessLookupError:
            pass
    return True


def wait_gone(pid, seconds=15):
    deadline = time.monotonic() + seconds
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.timeout(300)
def test_nodes__two_connected__blocks_travel_restart_same_port_all_stopped(tmp_path):
    t0 = time.monotonic()
    nodes = ipfsnode.start_nodes(2, str(tmp_path), connect=True)
    print("2 connected nodes ready in %.1f s" % (time.monotonic() - t0))
    n1, n2 = nodes
    pids = [n1.pid, n2.pid]
    try:
        assert n1.api_url != n2.api_url and n1.swarm_port != n2.swarm_port
        assert n1.peer_id in n2.peers()
        assert json.loads(n1.rpc("version"))["Version"]
        assert n1.rpc_json("id")["ID"] == n1.peer_id

        # bytes added on node 1 reach node 2 over bitswap
        data = os.urandom(100000)
        cid = n1.add(data, cid_version=1, raw_leaves=True)
        t = time.monotonic()
        assert n2.block_get(cid, timeout=30) == data
        print("block/get over bitswap %.2f s" % (time.monotonic() - t))

        # the default-settings vector; its root (4 links to 256 KiB leaves) travels too
        assert n1.add(b"\0" * 1048576) == ZEROS_1MIB_CID
        root = n1.block_get(ZEROS_1MIB_CID)
        assert n2.block_get(ZEROS_1MIB_CID, timeout=30) == root
        assert len(root) == 200

        # params as a list of pairs, bools spelled true/false; HTTP errors carry the body
        assert n1.rpc_json("block/stat", [("arg", cid)])["Size"] == len(data)
        with pytest.raises(ipfsnode.RpcError) as e:
            n1.rpc("block/get", {"arg": "not-a-cid"}, timeout=10)
        assert e.value.code >= 400 and e.value.body
        assert e.value.body.decode(errors="replace").strip() in str(e.value)

        # SIGKILL, then start() on the same ports and repo
        api, gw = n1.api_url, n1.gateway_url
        n1.kill()
        assert wait_gone(pids[0])
        n1.kill()  # idempotent
        t = time.monotonic()
        n1.start()
        print("restart after SIGKILL %.1f s" % (time.monotonic() - t))
        pids.append(n1.pid)
        assert (n1.api_url, n1.gateway_url) == (api, gw) and n1.pid != pids[0]
        assert n1.block_get(ZEROS_1MIB_CID) == root  # the repo survived
        assert n1.peer_id in n2.peers()  # and the nodes are connected again
        more = os.urandom(5000)
        assert n2.block_get(n1.add(more, cid_version=1, raw_leaves=True), timeout=30) == more

        # stop() is SIGTERM by PID, idempotent, and start() works after it too
        n2.stop()
        assert gone(pids[1])
        n2.stop()
        n2.start()
        pids.append(n2.pid)
        assert n2.block_get(cid) == data
    finally:
        ipfsnode.stop_nodes(nodes)
    for pid in pids:
        assert gone(pid), "daemon %d survived" % pid


def make_tree(top):
    os.makedirs(os.path.join(top, "sub dir", "deeper"))
    os.makedirs(os.path.join(top, ".hidden-dir"))
    files = {
        "a": b"single-character name",
        "b.txt": b"hello\n",
        "sub dir/%41 & ü.bin": os.urandom(300000),  # escapes, UTF-8, several chunks
        "sub dir/deeper/empty": b"",
        ".hidden": b"skipped",
        ".hidden-dir/x": b"skipped too",
    }
    for rel, body in files.items():
        with open(os.path.join(top, rel), "wb") as f:
            f.write(body)


@pytest.mark.timeout(300)
def test_add_dir__same_cids_as_the_node_cli(tmp_path):
    top = str(tmp_path / "t")
    make_tree(top)
    nodes = ipfsnode.start_nodes(1, str(tmp_path / "w"))
    (node,) = nodes
    try:
        for opts, cli in (({}, []),
                          ({"cid_version": 1, "raw_leaves": True}, ["--cid-version=1"])):
            got = node.add_dir(top, pin=False, **opts)
            # the node's own CLI (ipfs-http-client's multipart encoder) through the daemon
            r = subprocess.run([ipfsnode.jsipfs_path(), "add", "-r", "-Q"] + cli + [top],
                               env=dict(os.environ, IPFS_PATH=node.repo),
                               capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr.decode()
            assert got == r.stdout.decode().strip(), opts
        listing = node.rpc_json("ls", {"arg": got})["Objects"][0]["Links"]
        assert sorted(link["Name"] for link in listing) == ["a", "b.txt", "sub dir"]
        # Symlinks go out as application/symlink parts (Kubo stores them as UnixFS symlinks),
        # but js-ipfs's add handler passes on only files and directories and drops them (its
        # CLI follows them instead): with this node a tree with symlinks gets the same CID.
        os.symlink("b.txt", os.path.join(top, "link"))
        os.symlink("../sub dir", os.path.join(top, "sub dir", "deeper", "up"))
        assert node.add_dir(top, pin=False, cid_version=1, raw_leaves=True) == got
    finally:
        ipfsnode.stop_nodes(nodes)
    assert gone(node.pid)


@pytest.mark.timeout(300)
def test_cli__start_detached_then_stop_by_pid(tmp_path):
    script = os.path.join(SUPPORT, "ipfsnode.py")
    d = str(tmp_path)
    r = subprocess.run(["/usr/bin/python3", script, "start", "--n", "1", "--dir", d],
                       capture_output=True, text=True, timeout=180)
    with open(os.path.join(d, "nodes.json")) as f:
        (entry,) = json.load(f)
    try:
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [entry["api_url"]]
        assert not gone(entry["pid"])  # outlived the command that started it
        node = ipfsnode.IpfsNode("cli", entry["repo"], ports=(entry["api_port"],
                                 entry["gateway_port"], entry["swarm_port"], entry["rpc_port"]))
        assert node.add(b"\0" * 1048576) == ZEROS_1MIB_CID
    finally:
        r = subprocess.run(["/usr/bin/python3", script, "stop", "--dir", d],
                           capture_output=True, text=True, timeout=60)
        stopped = wait_gone(entry["pid"])  # by the command, before any backstop
        if not stopped:  # backstop: never leave it running
            try:
                os.killpg(entry["pid"], 9)
            except ProcessLookupError:
                pass
    assert r.returncode == 0, r.stderr
    assert stopped, "ipfsnode.py stop left the node running"
    assert not os.path.exists(os.path.join(d, "nodes.json"))
