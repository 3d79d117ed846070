# SPDX-License-Identifier: GPL-2.0-or-later
"""Several mounts on one host (issue 15). Each daemon owns its state_dir (a second daemon on it
is refused with one line) and its staging files, which sit in cache_dir/staging/<its index's
instance id>/: mounts that share a cache_dir (the shipped layout: a state_dir per mount, one
CacheDirectory) never delete each other's pending uploads. Staging files of the old layout,
cache_dir/staging/<ino>.<gen>, move into the directory of the index that names them and are
left alone otherwise."""
import json
import os
import shutil
import signal
import subprocess

import pytest
from ipfsnode import free_ports
from mount import LIVE, force_unmount, fsync_path, is_mounted, source_root

MiB = 1 << 20


def dead_url():
    """An RPC node nothing listens on: uploads to it stay pending."""
    return "http://127.0.0.1:%d" % free_ports(1)[0]


def node_cfg(url, **extra):
    c = {"rpc_nodes": [url], "gateway_nodes": [], "timeout": 10}
    c.update(extra)
    return c


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def staged_files(cache_dir, ino):
    """ino's staging files anywhere under cache_dir/staging, whatever the layout (the test must
    tell a file deleted from one moved)."""
    out = []
    for dirpath, _, files in os.walk(os.path.join(cache_dir, "staging")):
        out += [os.path.join(dirpath, f) for f in files if f.split(".")[0] == str(ino)]
    return sorted(out)


def restart_on(m, url):
    """Restarts m with url as its node (its pending uploads resume there)."""
    m.stop()
    m.config["rpc_nodes"] = [url]
    m.start()


def uploaded(m, name, node, data):
    """name's upload pinned (fsync), its CID's bytes on node and in the mount equal data."""
    fsync_path(m.path(name))
    cid = os.getxattr(m.path(name), "user.prsm.cid").decode()
    assert node.rpc("cat", [("arg", cid)], timeout=120) == data, name
    assert read(m.path(name)) == data, name


@pytest.mark.timeout(300)
def test_shared_cache_dir__pending_upload_of_a__kept_when_b_starts__uploaded_after_restart(
        ipfs_node, mount_factory, workdir):
    shared = os.path.join(workdir, "shared.cache")
    a = mount_factory(config=node_cfg(dead_url(), cache_dir=shared), name="a")
    data = os.urandom(3 * MiB + 123)
    write(a.path("f"), data)  # closed: durable, its upload pending (the node is unreachable)
    staged = staged_files(shared, os.stat(a.path("f")).st_ino)
    assert len(staged) == 1, staged
    # b's start sweeps its staging files: a's are not b's to delete
    b = mount_factory(config=node_cfg(ipfs_node.api_url, cache_dir=shared), name="b")
    assert read(a.path("f")) == data
    assert staged_files(shared, os.stat(a.path("f")).st_ino) == staged
    assert os.path.dirname(staged[0]) == a.staging_dir() != b.staging_dir()
    write(b.path("g"), data[:MiB])  # b writes and uploads beside it
    uploaded(b, "g", ipfs_node, data[:MiB])
    assert os.listdir(b.staging_dir()) == []
    assert os.listdir(a.staging_dir()) == [os.path.basename(staged[0])]
    # a restarted on a working node: its job resumes and completes
    restart_on(a, ipfs_node.api_url)
    uploaded(a, "f", ipfs_node, data)
    assert os.listdir(a.staging_dir()) == []


def run_refused(m, timeout=20):
    """Runs the daemon of m (not started) and returns its (exit status, stderr), which the
    caller expects to be a refusal; one that mounts and serves instead is stopped by PID,
    unmounted, and fails the test."""
    with open(m.config_path, "w") as f:
        json.dump(m.config, f)
    proc = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    LIVE.add(proc)  # the watchdog's to kill too
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        force_unmount(m.mountpoint)
        pytest.fail("a second daemon was not refused: it ran for %d s" % timeout)
    finally:
        LIVE.discard(proc)
    assert not is_mounted(m.mountpoint)
    return proc.returncode, err


@pytest.mark.timeout(300)
def test_same_state_dir__second_daemon_exits_1_with_one_line__first_keeps_working(
        ipfs_node, mount_factory):
    a = mount_factory(config=node_cfg(ipfs_node.api_url), name="a")
    write(a.path("before"), b"one")
    second = mount_factory(config=node_cfg(ipfs_node.api_url, state_dir=a.state_dir),
                           name="second", start=False)
    rc, err = run_refused(second)
    assert rc == 1, err
    assert err.strip().splitlines() == [
        "prsmfs: state_dir %s is in use by another prsmfs (pid %d)" % (a.state_dir, a.proc.pid)
    ], err
    assert not os.path.exists(second.cache_dir)  # refused before it touched anything
    with open(os.path.join(a.state_dir, "lock")) as f:
        assert f.read() == "%d\n" % a.proc.pid
    # the first one goes on: reads, writes, uploads; the lock goes with it
    write(a.path("after"), b"two")
    uploaded(a, "after", ipfs_node, b"two")
    assert read(a.path("before")) == b"one"
    a.restart()
    assert read(a.path("before")) == b"one" and read(a.path("after")) == b"two"


@pytest.mark.timeout(300)
def test_copied_state_dir__same_instance_id__second_refused_staging_kept(ipfs_node,
                                                                         mount_factory,
                                                                         workdir):
    """A state_dir copied for a second mount carries the first one's instance id: the second
    daemon must not share (and sweep) the first one's staging directory."""
    shared = os.path.join(workdir, "shared.cache")
    a = mount_factory(config=node_cfg(dead_url(), cache_dir=shared), name="a")
    a.stop()
    copy = mount_factory(config=node_cfg(ipfs_node.api_url, cache_dir=shared,
                                         state_dir=os.path.join(workdir, "copy.state")),
                         name="copy", start=False)
    shutil.copytree(a.state_dir, copy.config["state_dir"],
                    ignore=shutil.ignore_patterns("control.sock"))
    a.start()
    write(a.path("f"), b"pending")
    rc, err = run_refused(copy)
    assert rc == 1, err
    assert "is in use by another prsmfs whose index has the same instance id" in err
    assert read(a.path("f")) == b"pending"
    assert len(os.listdir(a.staging_dir())) == 1


def shipped_config(workdir, instance, rpc_url):
    """packaging/examples/config.json as the mount prsmfs@<instance> would use it: its
    directories where packaging/systemd/prsmfs@.service makes them (StateDirectory per
    instance, one CacheDirectory for all), moved under workdir; its nodes the test's."""
    root = source_root()
    with open(os.path.join(root, "packaging", "examples", "config.json")) as f:
        cfg = json.load(f)
    unit = {}
    with open(os.path.join(root, "packaging", "systemd", "prsmfs@.service")) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep:
                unit[key] = value
    # the example is the instance mnt-prsm of the unit: the same relation of directories
    assert cfg["state_dir"] == "/var/lib/" + unit["StateDirectory"].replace("%i", "mnt-prsm")
    assert cfg["cache_dir"] == "/var/cache/" + unit["CacheDirectory"]
    cfg["state_dir"] = os.path.join(workdir, "var", "lib",
                                    unit["StateDirectory"].replace("%i", instance))
    cfg["cache_dir"] = os.path.join(workdir, "var", "cache", unit["CacheDirectory"])
    for d in (cfg["state_dir"], cfg["cache_dir"]):  # systemd makes them before the start
        os.makedirs(d, mode=0o755, exist_ok=True)
    cfg["rpc_nodes"] = [rpc_url]
    cfg["gateway_nodes"] = []
    return cfg


@pytest.mark.timeout(400)
def test_shipped_layout__two_mounts_one_cache_dir__nothing_lost(ipfs_node, mount_factory,
                                                                 workdir):
    # the shipped paths under a short root: state_dir/control.sock must fit a unix socket's
    # 108 bytes, which a clone in a deep temporary directory exceeded
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="sl-", dir="/tmp")
    atexit.register(shutil.rmtree, root, True)
    a = mount_factory(config=shipped_config(root, "mnt-a", dead_url()), name="mnt-a")
    b_cfg = shipped_config(root, "mnt-b", ipfs_node.api_url)
    assert a.config["cache_dir"] == b_cfg["cache_dir"] != a.config["state_dir"]
    closed, more = os.urandom(2 * MiB + 1), os.urandom(MiB + 5)
    write(a.path("closed"), closed)  # its upload pending
    writer = open(a.path("open"), "wb")  # still being written while b starts
    try:
        writer.write(more)
        writer.flush()
        b = mount_factory(config=b_cfg, name="mnt-b")
        write(b.path("b-file"), more)
        uploaded(b, "b-file", ipfs_node, more)
        writer.write(closed)
    finally:
        writer.close()
    b.restart()  # another sweep
    assert read(a.path("closed")) == closed
    assert read(a.path("open")) == more + closed
    staging = os.path.join(a.config["cache_dir"], "staging")
    assert sorted(os.listdir(staging)) == sorted([a.instance_id(), b.instance_id()])
    assert len(os.listdir(a.staging_dir())) == 2 and os.listdir(b.staging_dir()) == []
    restart_on(a, ipfs_node.api_url)
    uploaded(a, "closed", ipfs_node, closed)
    uploaded(a, "open", ipfs_node, more + closed)
    assert os.listdir(a.staging_dir()) == []
    assert read(b.path("b-file")) == more


@pytest.mark.timeout(300)
def test_old_layout_staging_file__adopted_by_its_index__others_left_alone(ipfs_node,
                                                                           mount_factory):
    a = mount_factory(config=node_cfg(dead_url()), name="a")
    data = os.urandom(2 * MiB + 7)
    write(a.path("f"), data)
    a.stop()  # its upload pending
    own, root = a.staging_dir(), os.path.join(a.cache_dir, "staging")
    (name,) = os.listdir(own)
    os.rename(os.path.join(own, name), os.path.join(root, name))  # where older versions kept it
    foreign = os.path.join(root, "999999.1234567890")  # no inode of this index
    write(foreign, b"another daemon's")
    a.start()
    assert "moved 1 staging files of the old layout" in a.stderr()
    assert read(a.path("f")) == data
    assert os.listdir(own) == [name]
    assert sorted(os.listdir(root)) == sorted([a.instance_id(), os.path.basename(foreign)])
    restart_on(a, ipfs_node.api_url)
    uploaded(a, "f", ipfs_node, data)
    assert os.listdir(own) == []
    assert read(foreign) == b"another daemon's"
