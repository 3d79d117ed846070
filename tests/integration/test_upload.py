# SPDX-License-Identifier: GPL-2.0-or-later
"""The upload module against real js-ipfs nodes, through tests/support/uploadtool (which calls
upload_submit / upload_cancel / upload_fd): root CIDs equal the node's own `add` with the same
settings for 0 B, 1 B, chunk-1, chunk, chunk+1 and 64 MiB in both profiles, pinned on
`replicas` nodes, bytes back by `cat`; the write node killed mid-upload (the job completes on
another node, sending only the blocks that node lacks); every node down until one comes back
(the job completes by itself, done() once); cancel of a queued and of a running job; memory
held by block copies stays bounded; upload speed next to the node's own `add`; a directory
node through upload_blocks (publish) equal to the node's `add -r`. Runs (1 MiB leaves, which
js-ipfs takes only through add): several leaves per add, the root equal to the node's own add
and pinned; a node that stores other leaves than sent (a proxy flips a byte of a run) gets
the leaves one by one and the right root is pinned; the write node killed in the middle of
the runs: the upload resumes on another node, sending only what that node lacks."""
import json
import os
import random
import subprocess
import time

import pytest
from mount import build_binary
from rpcproxy import RpcProxy

MiB = 1 << 20
K256 = 256 * 1024
ECANCELED = 125

# js-ipfs's HTTP API refuses request bodies over 1 MiB (hapi's default payload limit; only
# add, dag/put and files/write lift it), so block/put of a 1 MiB leaf answers 413 there (Kubo
# takes it). The default profile (CIDv1, raw leaves, 1024 links) is therefore tested with the
# largest chunk js-ipfs's block/put takes; the legacy profile runs with its own 256 KiB.
JS_CHUNK = MiB - 1024

PROFILES = {
    # name: (uploadtool flags, chunk, the node's add options)
    "default": (["--chunk", JS_CHUNK], JS_CHUNK,
                dict(cid_version=1, raw_leaves=True, chunker="size-%d" % JS_CHUNK)),
    "legacy": (["--legacy"], K256, dict(cid_version=0, raw_leaves=False,
                                        chunker="size-%d" % K256)),
}


def payload(size, seed):
    return random.Random(seed).randbytes(size)


def tool_args(nodes, *extra):
    args = [build_binary("tests/support/uploadtool")]
    for n in nodes:
        args += ["--rpc", n.api_url]
    return args + [str(a) for a in extra]


def run_tool(args, timeout=600):
    r = subprocess.run(args, capture_output=True, timeout=timeout)
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines() if ln.strip()]
    return r, lines


def check_clean(stderr):
    text = stderr.decode(errors="replace")
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert bad not in text, text


def node_root(node, data, opts):
    """The root CID the node's own add gives these bytes (base32 for CIDv1, as we print)."""
    extra = {"cid_base": "base32"} if opts["cid_version"] == 1 else {}
    return node.add(data, only_hash=True, **opts, **extra)


def pinned_on(node, cid):
    try:
        keys = node.rpc_json("pin/ls", [("arg", cid), ("type", "recursive")],
                             timeout=30).get("Keys") or {}
    except Exception:  # an error answer: not pinned
        return False
    return len(keys) == 1


class Tool:
    """uploadtool running in the background; killed by PID in every outcome."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, timeout):
        out, err = self.p.communicate(timeout=timeout)
        check_clean(err)
        return self.p.returncode, [json.loads(ln) for ln in out.decode().splitlines()
                                   if ln.strip()], err.decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


def wait_progress(path, tool, pred, timeout=120):
    """Waits until pred(sent, skipped, failed, retried, read) holds for the progress file."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fields = [int(x) for x in path.read_text().split()]
        except (OSError, ValueError):
            fields = []
        if len(fields) == 5 and pred(*fields):
            return fields
        assert tool.p.poll() is None, "uploadtool ended early: %s" % tool.p.stderr.read()
        assert time.monotonic() < deadline, "no progress: %r" % fields
        time.sleep(0.01)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("profile", ["default", "legacy"])
def test_sizes__root_equals_node_add__pinned_on_replicas(ipfs_nodes_factory, tmp_path,
                                                         profile):
    flags, chunk, opts = PROFILES[profile]
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    sizes = [0, 1, chunk - 1, chunk, chunk + 1, 64 * MiB + 7]
    files = []
    for i, size in enumerate(sizes):
        p = tmp_path / ("f%d" % i)
        p.write_bytes(payload(size, i))
        files.append(p)
    r, lines = run_tool(tool_args([n1, n2], *flags, "--replicas", 2, "--jobs", 2,
                                  "--cache", tmp_path / "cache", "--cache-large-writes", *files))
    check_clean(r.stderr)
    assert r.returncode == 0, r.stderr.decode()
    results = {ln["id"]: ln for ln in lines if "id" in ln}
    summary = lines[-1]
    assert summary["done_calls"] == {str(i + 1): 1 for i in range(len(sizes))}
    assert summary["stats"]["pins"] == len(sizes)
    assert summary["stats"]["jobs_done"] == len(sizes)
    for i, (p, size) in enumerate(zip(files, sizes)):
        res = results[i + 1]
        data = p.read_bytes()
        assert res["error"] == 0 and res["size"] == size and res["attempts"] == 1
        assert res["root"] == node_root(n1, data, opts), (profile, size)
        assert pinned_on(n1, res["root"]) and pinned_on(n2, res["root"]), (profile, size)
        if size <= chunk + 1 or size > 32 * MiB:
            assert n2.rpc("cat", [("arg", res["root"])], timeout=300) == data
    # every uploaded block went into the local cache as well (--cache-large-writes)
    cached = sum(len(fs) for _, _, fs in os.walk(tmp_path / "cache"))
    assert cached >= sum(results[i + 1]["blocks"] for i in range(len(sizes))) - len(sizes)


@pytest.mark.timeout(900)
def test_upload_fd__bounded_memory__speed_next_to_node_add(ipfs_nodes_factory, tmp_path):
    n1, n2 = ipfs_nodes_factory(2)  # two fresh offline nodes: ours, and the node's own add
    data = payload(64 * MiB, 99)
    path = tmp_path / "big"
    path.write_bytes(data)
    parallel, queue = 5, 5
    t0 = time.monotonic()
    r, lines = run_tool(tool_args([n1], "--fd", "--chunk", JS_CHUNK, "--parallel", parallel,
                                  "--queue", queue, path))
    ours = time.monotonic() - t0
    check_clean(r.stderr)
    assert r.returncode == 0, r.stderr.decode()
    res = lines[-1]
    opts = PROFILES["default"][2]
    assert res["error"] == 0 and res["size"] == len(data)
    assert res["root"] == node_root(n2, data, opts)
    assert pinned_on(n1, res["root"])
    # block copies in memory: the queue plus one per put thread, never the file
    peak = res["stats"]["mem_peak_bytes"]
    assert 0 < peak <= (queue + parallel) * (MiB + 4096), peak
    t0 = time.monotonic()
    n2.add(data, **opts)
    theirs = time.monotonic() - t0
    print("64 MiB: upload_fd (build + put + pin; %s) %.2f s = %.1f MiB/s; node add "
          "%.2f s = %.1f MiB/s; peak block memory %.1f MiB"
          % (os.path.basename(build_binary("")[:-1]), ours, 64 / ours, theirs, 64 / theirs,
             peak / MiB))


@pytest.mark.timeout(900)
def test_write_node_killed__completes_elsewhere__only_missing_blocks_sent(
        ipfs_nodes_factory, tmp_path):
    n1, n2, n3 = ipfs_nodes_factory(3, connect=True)
    data = payload(64 * MiB, 7)
    path = tmp_path / "file"
    path.write_bytes(data)
    k = 40  # n2 and n3 already hold the first k leaves (raw leaves of the same bytes)
    for n in (n2, n3):
        n.add(data[:k * K256], cid_version=1, raw_leaves=True, chunker="size-%d" % K256)
    progress = tmp_path / "progress"
    tool = Tool(tool_args([n1, n2, n3], "--chunk", K256, "--parallel", 4, "--replicas", 2,
                          "--progress", progress, "--linger", 1000, path))
    try:
        wait_progress(progress, tool, lambda sent, *_: sent >= 30)
        n1.kill()
        rc, lines, err = tool.finish(timeout=600)
    finally:
        tool.stop()
    assert rc == 0, err
    res, summary = lines[0], lines[-1]
    assert summary["done_calls"] == {"1": 1}
    assert res["error"] == 0 and res["attempts"] >= 2
    assert res["node"] in (n2.api_url, n3.api_url)
    blocks = res["blocks"]
    assert blocks == 257  # 256 leaves + root (1024 links per node)
    # the last attempt sent exactly what its node lacked
    assert res["last_skipped"] == k and res["last_sent"] == blocks - k
    assert 30 <= res["sent"] - res["last_sent"] < blocks  # what n1 got before it died
    assert pinned_on(n2, res["root"]) and pinned_on(n3, res["root"])
    assert n3.rpc("cat", [("arg", res["root"])], timeout=300) == data
    print("write node killed after %d of %d blocks; finished on %s after %d attempts: %d sent, "
          "%d already there" % (res["sent"] - res["last_sent"], blocks, res["node"],
                                res["attempts"], res["last_sent"], res["last_skipped"]))


@pytest.mark.timeout(600)
def test_all_nodes_down__one_returns__job_completes_by_itself_once(ipfs_nodes_factory,
                                                                   tmp_path):
    n1, n2 = ipfs_nodes_factory(2)
    n1.kill()
    n2.kill()
    data = payload(3 * MiB + 5, 3)
    path = tmp_path / "file"
    path.write_bytes(data)
    progress = tmp_path / "progress"
    tool = Tool(tool_args([n1, n2], "--chunk", JS_CHUNK, "--retry-base", 100, "--retry-max", 800,
                          "--progress", progress, "--linger", 2000, path))
    try:
        wait_progress(progress, tool, lambda sent, skipped, failed, *_: failed >= 4)
        n2.start()
        rc, lines, err = tool.finish(timeout=300)
    finally:
        tool.stop()
    assert rc == 0, err
    done = [ln for ln in lines if "id" in ln]
    assert len(done) == 1 and lines[-1]["done_calls"] == {"1": 1}
    res = done[0]
    assert res["error"] == 0 and res["attempts"] >= 5 and res["node"] == n2.api_url
    assert lines[-1]["stats"]["attempts_failed"] >= 4
    assert res["root"] == node_root(n2, data, PROFILES["default"][2])
    assert pinned_on(n2, res["root"])
    assert n2.rpc("cat", [("arg", res["root"])], timeout=120) == data


@pytest.mark.timeout(600)
def test_cancel__queued_and_running_jobs__done_once_with_ecanceled(ipfs_nodes_factory,
                                                                  tmp_path):
    (n1,) = ipfs_nodes_factory(1)
    big = tmp_path / "big"
    big.write_bytes(payload(64 * MiB, 5))
    small = tmp_path / "small"
    small.write_bytes(payload(100, 6))
    # one runner: job 1 runs, job 2 waits in the queue and is cancelled there; job 1 is
    # cancelled once 20 of its blocks went out
    r, lines = run_tool(tool_args([n1], "--jobs", 1, "--chunk", K256, "--parallel", 2,
                                  "--cancel", 2, "--cancel-after", "1:20", "--linger", 1000,
                                  big, small))
    check_clean(r.stderr)
    assert r.returncode == 0, r.stderr.decode()
    done = [ln for ln in lines if "id" in ln]
    assert [d["id"] for d in done] == [2, 1]  # the queued one at once, before the running one
    assert all(d["error"] == -ECANCELED for d in done)
    assert lines[-1]["done_calls"] == {"1": 1, "2": 1}
    stats = lines[-1]["stats"]
    assert stats["jobs_cancelled"] == 2 and stats["jobs_done"] == 0 and stats["pins"] == 0
    assert 20 <= stats["blocks_sent"] < 257


@pytest.mark.timeout(600)
def test_upload_blocks__directory__root_equals_node_add_r_and_pinned(ipfs_nodes_factory,
                                                                     tmp_path):
    n1, n2 = ipfs_nodes_factory(2, connect=True)
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, size in (("empty", 0), ("one", 1), ("big.bin", 3 * K256 + 11)):
        (tree / name).write_bytes(payload(size, len(name)))
    r, lines = run_tool(tool_args([n1, n2], "--dir", "--legacy", "--replicas", 2, tree))
    check_clean(r.stderr)
    assert r.returncode == 0, r.stderr.decode()
    res = lines[-1]
    assert res["error"] == 0 and res["entries"] == 3
    want = n1.add_dir(str(tree), cid_version=0, pin=False, only_hash=True)
    assert res["root"] == want
    assert pinned_on(n1, res["root"]) and pinned_on(n2, res["root"])
    names = {ln["Name"] for ln in n2.rpc_json("ls", [("arg", res["root"])])["Objects"][0]["Links"]}
    assert names == {"empty", "one", "big.bin"}


# runs: full 1 MiB leaves after js-ipfs's first 413, 8 MiB per add (upload.h UPLOAD_RUN_BYTES)
RUN_OPTS = dict(cid_version=1, raw_leaves=True, chunker="size-%d" % MiB)
RUN_BODY = 8 * MiB + 4096  # the largest add body a run makes (multipart framing included)


def proxies(nodes):
    return [RpcProxy(n.api_url).start() for n in nodes]


def dagtool_root(data):
    """The default profile's root (1024 links per node: over 174 leaves js-ipfs's add differs)."""
    r = subprocess.run([build_binary("tests/support/dagtool"), "file", "--profile", "default"],
                       input=data, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def upload_via_proxy(px, node, tmp_path, size, seed):
    """One file of 1 MiB leaves through uploadtool to node behind px; checks that it ended
    pinned on node with our root, readable; returns (result line, summary line, stderr)."""
    data = payload(size, seed)
    path = tmp_path / "file"
    path.write_bytes(data)
    try:
        r, lines = run_tool(tool_args([px], "--chunk", MiB, "--parallel", 5, path))
    finally:
        px.stop()
    check_clean(r.stderr)
    assert r.returncode == 0, r.stderr.decode()
    res = lines[0]
    assert res["error"] == 0 and res["attempts"] == 1
    assert res["root"] == node_root(node, data, RUN_OPTS)  # only-hash: changes nothing
    assert pinned_on(node, res["root"])
    assert node.rpc("cat", [("arg", res["root"])], timeout=300) == data
    return res, lines[-1], r.stderr.decode()


@pytest.mark.timeout(900)
def test_runs__1mib_leaves__several_per_add__root_equals_node_add_pinned(ipfs_nodes_factory,
                                                                        tmp_path):
    (n1,) = ipfs_nodes_factory(1)
    (px,) = proxies([n1])
    res, summary, err = upload_via_proxy(px, n1, tmp_path, 40 * MiB + 5, 11)
    assert res["blocks"] == 42
    # the leaves after the first 413 went up several to one add, none bigger than a run
    runs = px.adds_over(2 * MiB)
    assert len(runs) >= 3, px.requests
    assert all(body <= RUN_BODY for _, _, body in runs)
    assert len(px.adds_over(0)) < 42 - 8  # fewer requests than leaves
    # run bytes within run_mem_bytes (24 MiB): two runs held besides the one being gathered
    assert summary["stats"]["mem_peak_bytes"] <= 16 * MiB + 4096, summary
    assert "leaf by leaf" not in err


@pytest.mark.timeout(900)
def test_runs__node_stores_other_leaves__leaf_by_leaf__right_root_pinned(ipfs_nodes_factory,
                                                                         tmp_path):
    (n1,) = ipfs_nodes_factory(1)
    (px,) = proxies([n1])
    px.corrupt_add_over = 2 * MiB  # every run reaches the node with one byte flipped
    res, summary, err = upload_via_proxy(px, n1, tmp_path, 24 * MiB, 12)
    # the tampered runs were noticed and their leaves sent one by one; no run after that
    # but those already in flight (two at most)
    assert "named another root" in err and "leaf by leaf" in err, err
    assert 1 <= px.corrupted <= 2, px.corrupted


@pytest.mark.timeout(900)
def test_runs__write_node_killed__resumes_elsewhere__only_missing_sent(ipfs_nodes_factory,
                                                                       tmp_path):
    n1, n2, n3 = ipfs_nodes_factory(3)
    pxs = proxies([n1, n2, n3])
    data = payload(128 * MiB, 13)
    path = tmp_path / "file"
    path.write_bytes(data)
    k = 10  # n2 and n3 already hold the first k leaves
    for n in (n2, n3):
        n.add(data[:k * MiB], pin=False, **RUN_OPTS)
    progress = tmp_path / "progress"
    tool = Tool(tool_args(pxs, "--chunk", MiB, "--parallel", 5, "--progress", progress,
                          "--linger", 500, path))
    try:
        wait_progress(progress, tool, lambda sent, *_: sent >= 24)
        n1.kill()
        rc, lines, err = tool.finish(timeout=600)
    finally:
        tool.stop()
        for px in pxs:
            px.stop()
    assert rc == 0, err
    res, summary = lines[0], lines[-1]
    assert summary["done_calls"] == {"1": 1}
    assert res["error"] == 0 and res["attempts"] >= 2, res
    assert res["node"] in (pxs[1].url, pxs[2].url)
    final, fpx = (n2, pxs[1]) if res["node"] == pxs[1].url else (n3, pxs[2])
    assert res["blocks"] == 129  # 128 leaves + root
    assert res["last_skipped"] == k and res["last_sent"] == 129 - k, res
    assert res["root"] == dagtool_root(data)
    assert pinned_on(final, res["root"])
    assert final.rpc("cat", [("arg", res["root"])], timeout=300) == data
    # the resumed node got runs too
    assert len(fpx.adds_over(2 * MiB)) >= 3
