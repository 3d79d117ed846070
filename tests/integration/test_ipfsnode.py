# SPDX-License-Identifier: GPL-2.0-or-later
"""The test-node harness itself: real js-ipfs nodes start, exchange blocks, reproduce the
1 MiB-of-zeros vector, restart on the same port, and are stopped by PID."""
import os

import ipfsnode


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_nodes__two_connected__block_travels_and_all_stopped(tmp_path):
    nodes = ipfsnode.start_nodes(2, str(tmp_path), connect=True)
    pids = [n.pid for n in nodes]
    try:
        cid = nodes[0].add(b"\0" * 1048576)
        assert cid == "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU"
        root = nodes[1].block_get(cid, timeout=60)  # fetched over bitswap from node 1
        assert len(root) == 200  # 4 links of 256 KiB leaves (ipfs.md §16.2)
        api = nodes[0].api_url
        nodes[0].kill()
        assert not pid_alive(pids[0])
        nodes[0].start()
        assert nodes[0].api_url == api and nodes[0].pid != pids[0]
        pids.append(nodes[0].pid)
        assert nodes[0].block_get(cid) == root  # the repo survived the restart
    finally:
        ipfsnode.stop_nodes(nodes)
    for pid in pids:
        assert not pid_alive(pid)
