# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for integration tests: real js-ipfs nodes and real prsmfs mounts.

- `mount_factory(config=..., options=...)` returns started Mount objects; each is stopped at
  teardown, and the test fails if its daemon crashed, hung or printed a sanitizer report.
- `ipfs_node` is one real js-ipfs node shared by the tests of a module; `ipfs_nodes_factory`
  starts more (stopped by PID at teardown).
"""
import os
import sys

import pytest

SUPPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

import signal  # noqa: E402

from mount import DaemonFailure, Mount, kill_all_live  # noqa: E402

# A run started in the background by a shell without job control (`cmd &` in a script)
# inherits SIGINT and SIGQUIT ignored, and every child would too: the tests that Ctrl-C a
# reader blocked on the mount (test_never_stuck.py) then waited for a signal never delivered.
# Caught signals are reset to the default at exec, so the children get the default again.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)

DEFAULT_TEST_TIMEOUT = 600


class TestTimeout(AssertionError):
    pass


@pytest.fixture(autouse=True)
def watchdog(request):
    """Fails a test that runs too long instead of hanging the run: kills every live prsmfs
    daemon (so blocked syscalls on their mounts return) and raises in the test."""
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def expired(signum, frame):
        kill_all_live()
        raise TestTimeout("test exceeded %d s; prsmfs daemons killed" % seconds)

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test watchdog")
    config.addinivalue_line("markers", "slow: long-running (tens of minutes); runs only with "
                            "PRSMFS_SLOW_TESTS=1")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        skip = pytest.mark.skip(reason="needs root and /dev/fuse")
        for item in items:
            item.add_marker(skip)
    if os.environ.get("PRSMFS_SLOW_TESTS") != "1":
        skip = pytest.mark.skip(reason="slow: set PRSMFS_SLOW_TESTS=1")
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(skip)


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def mount_factory(workdir):
    mounts = []

    def make(config=None, options=(), name=None, start=True, allow_stderr=()):
        m = Mount(workdir, config=config, options=options,
                  name=name or "m%d" % len(mounts), allow_stderr=allow_stderr)
        mounts.append(m)
        if start:
            m.start()
        return m

    yield make
    failures = []
    for m in mounts:
        try:
            m.stop()
        except DaemonFailure as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def node_config(nodes):
    """prsmfs config pointing at real nodes (RPC + their gateways)."""
    return {
        "rpc_nodes": [n.api_url for n in nodes],
        "gateway_nodes": [n.gateway_url for n in nodes],
    }


@pytest.fixture
def ipfs_nodes_factory(tmp_path_factory):
    import ipfsnode

    started = []

    def make(n=1, connect=False):
        nodes = ipfsnode.start_nodes(n, str(tmp_path_factory.mktemp("ipfs")), connect=connect)
        started.extend(nodes)
        return nodes

    yield make
    ipfsnode.stop_nodes(started)


@pytest.fixture(scope="module")
def ipfs_node(tmp_path_factory):
    import ipfsnode

    nodes = ipfsnode.start_nodes(1, str(tmp_path_factory.mktemp("ipfs")))
    try:
        yield nodes[0]
    finally:
        ipfsnode.stop_nodes(nodes)
