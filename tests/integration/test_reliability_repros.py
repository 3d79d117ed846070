# SPDX-License-Identifier: GPL-2.0-or-later
"""Failures the model-checked POSIX campaign (tools/reliability/run posix) found, each kept as
the short op list it was shrunk to (tests/integration/repros/*.json) and replayed here against
the same model, on a real mount; plus a short seeded run of the exerciser itself with one
daemon restart, so that the model and the mount keep agreeing."""
import glob
import json
import os
import random
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "reliability"))

import posixmodel  # noqa: E402

REPROS = sorted(glob.glob(os.path.join(HERE, "repros", "*.json")))


def cfg(node):
    return {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}


def test_repros_exist():
    assert REPROS, "tests/integration/repros/ has no op lists"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", REPROS, ids=[os.path.basename(p)[:-5] for p in REPROS])
def test_repro__replays_without_mismatch(ipfs_node, mount_factory, path):
    with open(path) as f:
        case = json.load(f)
    m = mount_factory(config=cfg(ipfs_node))
    err = posixmodel.replay(m.path("r"), case["ops"], restart=m.restart)
    assert err is None, "%s: %s" % (case.get("what", path), err)


@pytest.mark.timeout(300)
def test_readdirplus__stat_of_file_open_for_writing_shows_its_written_size(ipfs_node,
                                                                           mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    p = m.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"x", 19541)
        assert os.fstat(fd).st_size == 19542
        assert os.listdir(m.mountpoint) == ["f"]  # readdirplus: attributes for the kernel
        assert os.stat(p).st_size == 19542
    finally:
        os.close(fd)
    assert os.stat(p).st_size == 19542


@pytest.mark.timeout(300)
def test_link__of_file_open_for_writing__both_names_show_its_written_size(ipfs_node,
                                                                        mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    fd = os.open(m.path("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"y" * 100, 307413)
        os.link(m.path("f"), m.path("g"))  # its entry reply carries attributes
        for name in ("f", "g"):
            st = os.stat(m.path(name))
            assert (st.st_size, st.st_nlink) == (307513, 2), name
    finally:
        os.close(fd)


@pytest.mark.timeout(300)
def test_model_checked_run__two_seeds_across_a_restart(ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node))
    runners = [posixmodel.Runner(m.path("t%d" % s), restart=None, full_every=50)
               for s in range(2)]
    rngs = [random.Random(s) for s in range(2)]
    try:
        for phase in range(2):
            for _ in range(300):
                for r, rng in zip(runners, rngs):
                    r.step(rng)
            for r in runners:
                r.close_all()
            if phase == 0:
                m.restart()
                for r in runners:
                    r.apply(["restart"])
        for r in runners:
            r.check_all()
    finally:
        for r in runners:
            for fd in r.fds.values():
                os.close(fd)
    assert sum(r.ops for r in runners) >= 1200
