# SPDX-License-Identifier: GPL-2.0-or-later
"""CI keeps the benchmark command working (tools/bench/run, issue 20): its quick form on a small
size, with the test build, writing into a temporary directory (figures from CI are not claims
and never land in docs/). It must finish, write benchmarks.json with every case's rounds and a
results page that starts with the headline table, and leave none of the processes it started
running and none of its mounts mounted. The runner's own budget (--budget 8, minutes) bounds it;
a run cut by its budget reports itself incomplete and fails here."""
import json
import os
import signal
import subprocess

import pytest
from mount import source_root

# the cases with code of their own (fio and scale loop over the same start/measure/stop steps);
# all of them in a few minutes on a busy 2-core machine
CASES = "cold,warm,meta,load,remote"


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(600)
def test_bench_run_quick__writes_results_and_leaves_nothing(workdir):
    out = os.path.join(workdir, "out")
    build = os.environ.get("PRSMFS_BUILD_ROOT") or os.path.join(source_root(), "build-release")
    cmd = [os.path.join(source_root(), "tools", "bench", "run"), "--quick", "--size", "8", "--files", "300",
           "--cases", CASES, "--out", out, "--build", build, "--budget", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text, _ = proc.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # the runner stops its mounts and processes
        try:
            text, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            text, _ = proc.communicate()
        pytest.fail("tools/bench/run --quick took over 540 s:\n" + text.decode(errors="replace")[-4000:])
    text = text.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]

    with open(os.path.join(out, "benchmarks.json")) as f:
        doc = json.load(f)
    assert doc["meta"]["status"] == "complete", doc["meta"]
    rounds = {}
    for r in doc["rows"]:
        rounds.setdefault((r["case"], r["system"]), set()).add(r["round"])
    for key in [("cold", "prsmfs_sha"), ("cold", "curl_sha"), ("cold", "rclone_sha"), ("cold", "rclone_cat"),
                ("cold", "sha256sum"),
                ("warm", "prsmfs"), ("warm", "rclone"), ("warm", "local"),
                ("load_mmap8", "prsmfs_cold"), ("load_pread8", "rclone_cold"), ("load_prefetch", "prsmfs_cold"),
                ("meta_ls_second", "prsmfs"), ("meta_find_first", "rclone"), ("meta_find_second", "prsmfs_ipfs"),
                ("remote_pread8", "prsmfs_cold")]:
        assert rounds.get(key) == {0, 1}, (key, rounds.get(key))
    for r in doc["rows"]:
        assert r["seconds"] > 0 and r["load1"] >= 0, r
        if r["case"] == "cold" and r["system"].endswith("_sha"):  # sha256sum's own time, read back
            assert 0 <= r["sha_held_s"] < r["seconds"], r
    # the listings saw the whole tree, on every file system
    lines = {r["system"]: r["lines"] for r in doc["rows"] if r["case"] == "meta_find_second"}
    assert lines["prsmfs"] == lines["prsmfs_ipfs"] == lines["local"] == lines["rclone"] > 300, lines

    with open(os.path.join(out, "benchmarks.md")) as f:
        page = f.read()
    assert page.index("## Headline ratios") < page.index("## Sequential reads"), page[:2000]
    assert "tools/bench/run --quick" in page and doc["meta"]["commit"] in page
    assert "held off the CPU" in page  # the sha256sum rows' bottleneck says how long, both sides
    # the listings' bottleneck from a perf profile (the run installs linux-perf when missing)
    assert any(x.endswith(" swapper") for x in doc["notes"]["perf_meta"]["comm"]), doc["notes"]
    assert doc["notes"]["perf_cold"], doc["notes"]  # and the daemon's cold read profiled
    assert "perf -a over one more second `find`: CPU idle" in page
    for png in ("bench-throughput.png", "bench-scaling.png", "bench-fio.png"):
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", png

    pids = doc["meta"]["pids"]
    assert len(pids) >= 10, pids  # nginx, prsmfs and rclone restarted for every run
    assert [p for p in pids if alive(p)] == []
    work = doc["meta"]["work"]  # its own: another run's mounts may be up on the same machine
    assert "prsmfs-bench." in work and not os.path.exists(work), work
    with open("/proc/self/mounts") as f:
        left = [line for line in f if line.split()[1].startswith(work + "/")]
    assert left == []
