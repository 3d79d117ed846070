# SPDX-License-Identifier: GPL-2.0-or-later
"""IPNS: `prsmctl publish --ipns KEY` on a writable mount P (on node A) and a read-only
follow mount F (`follow=/ipns/NAME`, on node B only) that picks up each new root within its
interval, never half-switched: every listing of F's root or a subdirectory is exactly one
version's names, every file read is exactly one version's bytes, and a file opened before a
switch keeps its old bytes. Two real js-ipfs nodes, connected (B resolves A's records and
fetches A's blocks over bitswap)."""
import errno
import json
import os
import pty
import re
import subprocess
import threading
import time
import urllib.request

import pytest
from mount import DaemonFailure, tool_binary

INTERVAL = 1.0
SLACK = 15.0  # a switch fetches the new root and lists it from node B (bitswap from A)


def prsmctl(*args, check=True, timeout=300):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, "prsmctl %s: %s" % (" ".join(args), p.stderr)
    return p


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    import ipfsnode

    started = ipfsnode.start_nodes(2, str(tmp_path_factory.mktemp("ipfs")), connect=True)
    try:
        yield started
    finally:
        ipfsnode.stop_nodes(started)


def status_on_tty(path):
    """prsmctl status as a terminal shows it (words, not JSON)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run([tool_binary("prsmctl"), "status", path], stdout=slave,
                           stderr=subprocess.PIPE, timeout=30)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, p.stderr
    return out.decode(errors="replace").replace("\r\n", "\n")


def metrics(port):
    """The follow samples of a mount's /metrics (name -> value)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(prsmfs_follow_[a-z_]+) (\S+)$", text, re.M)}


def writer_cfg(node):
    return {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}


def content(version, name):
    """A file's bytes name its version and path, many times over (a torn read shows)."""
    reps = 20 if os.path.basename(name).startswith("many-") else 2000
    return (("%s:%s\n" % (version, name)) * reps).encode()


# path -> None (a directory) or the version whose bytes it has; v2 shares some names
V1 = {"a.txt": "v1", "shared.txt": "v1", "only1.txt": "v1", "sub": None, "sub/c.txt": "v1",
      "sub/deep": None, "sub/deep/d.txt": "v1"}
V2 = {"b.txt": "v2", "shared.txt": "v2", "only2.bin": "v2", "sub": None, "sub/c.txt": "v2",
      "sub/e.txt": "v2", "newdir": None, "newdir/f.txt": "v2"}


# enough entries that a listing of the root takes several READDIR requests (about 30 entries
# each): names many-045..089 are in both trees, so a listing that switched trees part-way
# shows a set that is neither
for _i in range(0, 90):
    V1["many-%03d" % _i] = "v1"
    V2["many-%03d" % (_i + 45)] = "v2"


SMALL = {p: v for p, v in V1.items() if not p.startswith("many-")}
SAMPLE = ("many-000", "many-060", "many-134")  # the many-* files read (each costs a fetch)


def files_to_read(tree):
    return [(p, v) for p, v in sorted(tree.items())
            if v and (not p.startswith("many-") or p in SAMPLE)]


def names_in(tree, d=""):
    prefix = d + "/" if d else ""
    return {p[len(prefix):] for p in tree if p.startswith(prefix) and "/" not in p[len(prefix):]}


def write_tree(top, tree):
    os.makedirs(top)
    for p, v in sorted(tree.items()):
        if v is None:
            os.makedirs(os.path.join(top, p), exist_ok=True)
        else:
            with open(os.path.join(top, p), "wb") as f:
                f.write(content(v, p))  # publish waits for the uploads


def publish(path, key, *extra):
    out = prsmctl("publish", "--json", "--ipns", key, *extra, path).stdout
    return json.loads(out)


def wait_listing(path, want, timeout):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = set(os.listdir(path))
        except OSError as e:
            seen = e
        if seen == want:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError("%s lists %r, not %r, after %.0f s" % (path, seen, want, timeout))


def wait_follow_error(mountpoint):
    """The follow status of a mount once it reports an error (within the interval)."""
    deadline = time.monotonic() + INTERVAL + SLACK
    while True:
        st = json.loads(prsmctl("status", "--json", mountpoint).stdout)["follow"]
        if st["last_error"]:
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.2)


class Reader(threading.Thread):
    """Lists F's root and sub/ and reads every listed file, over and over, recording any
    listing that is not exactly v1's or v2's names and any read that is not one version."""

    def __init__(self, root, lists_only=False):
        super().__init__(daemon=True)
        self.root = root
        self.lists_only = lists_only  # the root only, as fast as it goes
        self.stop_ev = threading.Event()
        self.errors = []
        self.listings = {"v1": 0, "v2": 0}
        self.reads = 0

    def one(self):
        for d in ("",) if self.lists_only else ("", "sub"):
            path = os.path.join(self.root, d)
            try:
                names = set(os.listdir(path))
            except FileNotFoundError:
                continue  # sub/ of the other tree went between the root's listing and this
            if names == names_in(V1, d):
                self.listings["v1"] += 1
            elif names == names_in(V2, d):
                self.listings["v2"] += 1
            else:
                self.errors.append("listing of /%s mixes trees: %r" % (d, sorted(names)))
            for n in () if self.lists_only else names:
                rel = os.path.join(d, n) if d else n
                if n.startswith("many-") and n not in SAMPLE:
                    continue  # read a few of them: the listings are the point there
                if V1.get(rel, 0) is None or V2.get(rel, 0) is None:
                    continue
                try:
                    with open(os.path.join(self.root, rel), "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue  # its tree went since the listing: a whole answer
                self.reads += 1
                if data not in (content("v1", rel), content("v2", rel)):
                    self.errors.append("read of %s: %d bytes of no one version" % (rel, len(data)))

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.one()
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                self.errors.append("reader: %r" % e)


@pytest.mark.timeout(240)
def test_follow_sees_each_published_tree_whole(nodes, mount_factory, workdir):
    a, b = nodes
    p = mount_factory(config=writer_cfg(a), name="p")
    write_tree(p.path("v1"), V1)
    write_tree(p.path("v2"), V2)

    # a key no node has: refused, with the way out named
    bad = prsmctl("publish", "--ipns", "nokey", p.path("v1"), check=False)
    assert bad.returncode == 1
    assert "key not found on any node" in bad.stderr and "--create-key" in bad.stderr

    r1 = publish(p.path("v1"), "k", "--create-key")
    assert r1["ok"] is True and r1["key_created"] is True and r1["ipns_key"] == "k"
    assert r1["ipns_name"].startswith("/ipns/") and r1["ipns_node"] == a.api_url
    name = r1["ipns_name"]
    # plain output: the root CID, then the name
    plain = prsmctl("publish", "--ipns", "k", p.path("v1")).stdout.splitlines()
    assert plain == [r1["cid"], name]

    f = mount_factory(config={"rpc_nodes": [b.api_url], "gateway_nodes": [], "timeout": 10},
                      options=["follow=" + name, "follow_interval=1"], name="f")
    wait_listing(f.mountpoint, names_in(V1), INTERVAL + SLACK)
    for rel, v in files_to_read(V1):
        with open(f.path(rel), "rb") as fh:
            assert fh.read() == content("v1", rel), rel
    assert set(os.listdir(f.path("sub"))) == names_in(V1, "sub")
    st = json.loads(prsmctl("status", "--json", f.mountpoint).stdout)["follow"]
    assert st["name"] == name and st["root"] == r1["cid"] and st["last_error"] is None
    assert st["last_resolve"] > 0 and st["interval"] == 1.0

    # read-only: EROFS for every change, ST_RDONLY, and prsmctl refuses link and publish
    for op in (lambda: open(f.path("new.txt"), "wb"), lambda: os.mkdir(f.path("d")),
               lambda: os.unlink(f.path("a.txt")), lambda: open(f.path("a.txt"), "r+b"),
               lambda: os.rename(f.path("a.txt"), f.path("z.txt"))):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EROFS
    assert os.statvfs(f.mountpoint).f_flag & os.ST_RDONLY
    for args in (("link", r1["cid"], f.path("x")), ("publish", f.mountpoint)):
        res = prsmctl(*args, check=False)
        assert res.returncode == 1 and "read-only" in res.stderr, res.stderr

    held = open(f.path("shared.txt"), "rb")  # opened on v1, read after the switches
    readers = [Reader(f.mountpoint), Reader(f.mountpoint, lists_only=True)]
    for rd in readers:
        rd.start()
    try:
        time.sleep(0.5)
        # v2, back to v1 (its tree is known: an instant switch), v2 again
        t0 = time.monotonic()
        r2 = publish(p.path("v2"), "k")
        assert r2["ipns_name"] == name and r2["key_created"] is False
        t_seen = wait_listing(f.mountpoint, names_in(V2), INTERVAL + SLACK)
        for path, tree in (("v1", V1), ("v2", V2)):
            time.sleep(0.5)
            assert publish(p.path(path), "k")["ipns_name"] == name
            wait_listing(f.mountpoint, names_in(tree), INTERVAL + SLACK)
        time.sleep(0.5)  # the readers keep going on v2 for a while
    finally:
        for rd in readers:
            rd.stop_ev.set()
        for rd in readers:
            rd.join(30)
    try:
        assert held.read() == content("v1", "shared.txt")
    finally:
        held.close()
    for rd in readers:
        assert not rd.errors, rd.errors[:5]
        assert rd.listings["v1"] > 0 and rd.listings["v2"] > 0, rd.listings
    assert readers[0].reads > 0
    print("v2 seen %.2f s after its publish began (interval %.0f s); %d listings, %d reads"
          % (t_seen - t0, INTERVAL, sum(sum(rd.listings.values()) for rd in readers),
             readers[0].reads))
    for rel, v in files_to_read(V2):
        with open(f.path(rel), "rb") as fh:
            assert fh.read() == content("v2", rel), rel
    st = json.loads(prsmctl("status", "--json", f.mountpoint).stdout)["follow"]
    assert st["root"] == r2["cid"] and st["failures"] == 0 and st["rejected"] == 0
    assert st["switches"] == 4, st  # v1, v2, v1, v2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("opt,msg", [
    ("follow=/ipns/", "is no IPNS name"),
    ("follow=/ipns/bad name", "is no IPNS name"),
    ("follow=/ipfs/notacid", "must be /ipns/NAME, /ipfs/CID or a CID"),
    ("follow=bafynot", "must be /ipns/NAME, /ipfs/CID or a CID"),
    ("follow_interval=0.5", "follow_interval"),
])
def test_bad_follow_value_refused(mount_factory, opt, msg):
    m = mount_factory(config={"rpc_nodes": ["http://127.0.0.1:9"], "gateway_nodes": []},
                      options=[opt], start=False)
    with pytest.raises(DaemonFailure) as e:
        m.start()
    m.proc = None  # it exited, as it should: nothing to stop
    assert msg in str(e.value), str(e.value)


@pytest.mark.timeout(200)
def test_follow_keeps_root_of_a_file_and_restarts_offline(nodes, mount_factory, workdir):
    import ipfsnode

    a, b = nodes
    p = mount_factory(config=writer_cfg(a), name="p2")
    write_tree(p.path("t"), SMALL)
    r1 = publish(p.path("t"), "k2", "--create-key")
    name = r1["ipns_name"]
    port = ipfsnode.free_ports(1)[0]
    f = mount_factory(config={"rpc_nodes": [b.api_url], "gateway_nodes": [], "timeout": 5,
                              "follow": name, "follow_interval": 1,
                              "metrics_listen": "127.0.0.1:%d" % port},
                      name="f2", allow_stderr=("keeping the root shown",))
    wait_listing(f.mountpoint, names_in(SMALL), INTERVAL + SLACK)
    with open(f.path("a.txt"), "rb") as fh:
        assert fh.read() == content("v1", "a.txt")

    # the name moves to a file: refused, reported, the tree stays
    rf = publish(p.path("t", "a.txt"), "k2")
    assert rf["cid"] != r1["cid"]
    st = wait_follow_error(f.mountpoint)
    assert "not a directory" in st["last_error"] and rf["cid"] in st["last_error"], st
    assert st["root"] == r1["cid"] and st["failures"] >= 1
    assert set(os.listdir(f.mountpoint)) == names_in(SMALL)
    m = metrics(port)
    assert m["prsmfs_follow_switches_total"] == 1 and m["prsmfs_follow_rejected_total"] >= 1
    assert m["prsmfs_follow_failures_total"] >= 1 and m["prsmfs_follow_resolves_total"] >= 2
    assert m["prsmfs_follow_root_age_seconds"] >= 0
    plain = status_on_tty(f.mountpoint)
    assert "follow    " + name in plain and "not a directory" in plain, plain

    # restart with node B gone: the last root at once, from the index and the cache
    f.stop()
    b.stop()
    try:
        f.start()
        assert set(os.listdir(f.mountpoint)) == names_in(SMALL)
        with open(f.path("a.txt"), "rb") as fh:
            assert fh.read() == content("v1", "a.txt")
        st = wait_follow_error(f.mountpoint)
        assert st["root"] == r1["cid"] and "resolving failed" in st["last_error"], st
        assert set(os.listdir(f.mountpoint)) == names_in(SMALL)
    finally:
        b.start()
