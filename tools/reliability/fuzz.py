# SPDX-License-Identifier: GPL-2.0-or-later
"""Fuzz campaign: every libFuzzer target of tests/fuzz (docs/fuzzing.md) for a share of a
total CPU-time budget, then an allocation-failure run of the same decoders.

libFuzzer: each target runs (nice 19 unless --fuzz-nice says otherwise, ASan + UBSan) until it has used its share of CPU time
(measured from /proc, then SIGINT; `-max_total_time` 20 times the share is only a backstop on
a busy machine), with `-max_len` 65536, `-rss_limit_mb` 2048, `-malloc_limit_mb` 512: a decoder that allocates more than that
for one input, say from a lying length, is reported as a crash) on a copy of its committed
corpus, two targets at a time; its CPU time is taken from the process's rusage. A crash is
any non-zero exit or an artifact (crash-*, leak-*, oom-*, timeout-*) left in the work
directory, which is kept for the reproducer.

Allocation failures: `fuzz-failalloc-<t> N FILE` (tests/fuzz/failalloc.c, built with the
normal ASan build) runs one input with the Nth allocation of project code failing. For
sampled corpus inputs, N = 1, 2, ... until the input runs through without reaching N. A
sanitizer report or a signal other than SIGABRT is a crash; SIGABRT without a report is a
target's own round-trip check seeing the encoder's ENOMEM (counted, not a defect)."""
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import time

SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "ERROR: libFuzzer", "SUMMARY: UndefinedBehaviorSanitizer")


def targets(root):
    d = os.path.join(root, "tests", "fuzz")
    return sorted(f[len("fuzz_"):-2] for f in os.listdir(d)
                  if f.startswith("fuzz_") and f.endswith(".c") and f != "fuzz_main.c")


def ensure_fuzz_build(root, build, log):
    """Builds the libFuzzer binaries (clang) in build, or brings them up to date with the
    sources (a stale binary would fuzz the code as it was)."""
    ts = targets(root)
    log("fuzz: building (or updating) %d targets in %s" % (len(ts), build))
    if not os.path.exists(os.path.join(build, "build.ninja")):
        env = dict(os.environ, CC="clang")
        subprocess.run(["meson", "setup", build, "-Dfuzzing=true",
                        "-Db_sanitize=address,undefined", "-Db_lundef=false"], cwd=root,
                       env=env, check=True, capture_output=True)
    subprocess.run(["nice", "-n", "19", "ninja", "-C", build]
                   + ["tests/fuzz/fuzz-" + t for t in ts], check=True, capture_output=True)
    return ts


def cpu_seconds(pid):
    """User + system CPU time of a live process so far, from /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_libfuzzer(build, root, ts, cpu_budget, workdir, log, nice, parallel=2):
    per = max(10, int(cpu_budget / len(ts)))
    res = {}
    pending = list(ts)
    running = {}
    interrupted = set()

    def start(t):
        corpus = os.path.join(workdir, "corpus", t)
        shutil.copytree(os.path.join(root, "tests", "fuzz", "corpus", t), corpus,
                        dirs_exist_ok=True)
        art = os.path.join(workdir, "artifacts", t) + "/"
        os.makedirs(art, exist_ok=True)
        out = open(os.path.join(workdir, "fuzz-%s.log" % t), "wb")
        cmd = ["nice", "-n", str(nice), os.path.join(build, "tests", "fuzz", "fuzz-" + t),
               # CPU time is what is budgeted (see cpu_seconds); the wall-time bound is only
               # a backstop on a machine busy with other work
               "-max_total_time=%d" % (per * 20), "-max_len=65536", "-rss_limit_mb=2048",
               "-malloc_limit_mb=512", "-timeout=25", "-artifact_prefix=" + art,
               "-print_final_stats=1", corpus]
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1",
                                      UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"))
        running[p.pid] = (t, p, out, time.monotonic())

    try:
        fuzz_loop(pending, running, interrupted, start, per, res, workdir, log, parallel)
    finally:
        for pid, (t, p, out, t0) in running.items():  # interrupted: stop what was started
            p.kill()
            p.wait()
            out.close()
    return res


def fuzz_loop(pending, running, interrupted, start, per, res, workdir, log, parallel):
    while pending or running:
        while pending and len(running) < parallel:
            start(pending.pop(0))
        time.sleep(1)
        for pid in list(running):
            t, p, out, t0 = running[pid]
            if cpu_seconds(pid) >= per and pid not in interrupted:
                interrupted.add(pid)  # its share of CPU time is used: stop it cleanly
                os.kill(pid, signal.SIGINT)
            got, status, ru = os.wait4(pid, os.WNOHANG)
            if got == 0:
                continue
            del running[pid]
            p.returncode = os.waitstatus_to_exitcode(status)
            out.close()
            with open(out.name, "rb") as f:
                text = f.read().decode(errors="replace")
            m = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
            execs = int(m.group(1)) if m else 0
            arts = sorted(os.listdir(os.path.join(workdir, "artifacts", t)))
            clean = p.returncode == 0 or (pid in interrupted and p.returncode == 72
                                          and "run interrupted" in text)
            crashed = not clean or bool(arts)
            res[t] = {"cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
                      "wall_s": round(time.monotonic() - t0, 1), "executions": execs,
                      "crashes": len(arts) or int(crashed), "artifacts": arts,
                      "exit": p.returncode}
            log("fuzz: %s: %.0f CPU-s in %.0f s, %d executions, %s" % (
                t, res[t]["cpu_s"], res[t]["wall_s"], execs,
                "CRASH (%s; %s)" % (arts, out.name) if crashed else "no crash"))


def failalloc_run(asan_build, root, ts, budget_s, per_target_inputs, workdir, log, seed):
    """N = 1, 2, ... per sampled input; bounded by budget_s wall time in all."""
    res = {}
    end = time.monotonic() + budget_s
    rng = random.Random(seed)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for t in ts:
        exe = os.path.join(asan_build, "tests", "fuzz", "fuzz-failalloc-" + t)
        if not os.path.exists(exe):
            res[t] = {"error": "missing %s (ninja -C %s)" % (exe, asan_build)}
            continue
        cdir = os.path.join(root, "tests", "fuzz", "corpus", t)
        files = sorted(os.path.join(cdir, f) for f in os.listdir(cdir) if not f.startswith("."))
        rng.shuffle(files)
        files = files[:per_target_inputs] if per_target_inputs else files
        st = {"inputs": 0, "runs": 0, "failed_allocations": 0, "target_checks": 0,
              "crashes": 0, "reports": []}
        t_end = min(end, time.monotonic() + budget_s / len(ts))
        for path in files:
            if time.monotonic() > t_end:
                break
            st["inputs"] += 1
            for n in range(1, 5000):
                p = subprocess.run([exe, str(n), path], capture_output=True, timeout=60,
                                   env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1",
                                            UBSAN_OPTIONS="halt_on_error=1"))
                st["runs"] += 1
                err = p.stderr.decode(errors="replace")
                if any(mk in err for mk in SAN_MARKERS) or (
                        p.returncode < 0 and p.returncode != -signal.SIGABRT) or (
                        p.returncode not in (0, 3) and p.returncode != -signal.SIGABRT):
                    st["crashes"] += 1
                    if len(st["reports"]) < 5:
                        st["reports"].append("%s N=%d exit %d: %s" % (
                            os.path.basename(path), n, p.returncode, err[-1500:]))
                    break
                if p.returncode == -signal.SIGABRT:
                    st["target_checks"] += 1
                    st["failed_allocations"] += 1
                    continue
                if p.returncode == 0:
                    break  # N is past the last allocation of this input
                st["failed_allocations"] += 1
        res[t] = st
        log("fuzz: failalloc %s: %d inputs, %d failed allocations, %d crashes" % (
            t, st["inputs"], st["failed_allocations"], st["crashes"]))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return res, round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1)


def run(root, fuzz_build, asan_build, cpu_budget, failalloc_s, failalloc_inputs, workdir,
        seed, log, nice=19):
    ts = ensure_fuzz_build(root, fuzz_build, log)
    os.makedirs(workdir, exist_ok=True)
    res = {"targets": run_libfuzzer(fuzz_build, root, ts, cpu_budget, workdir, log, nice),
           "failures": []}
    res["cpu_s"] = round(sum(v["cpu_s"] for v in res["targets"].values()), 1)
    res["executions"] = sum(v["executions"] for v in res["targets"].values())
    res["crashes"] = sum(v["crashes"] for v in res["targets"].values())
    for t, v in res["targets"].items():
        if v["crashes"]:
            res["failures"].append("%s crashed: %s (exit %d) in %s" % (t, v["artifacts"],
                                                                     v["exit"], workdir))
    fa, fa_cpu = failalloc_run(asan_build, root, ts, failalloc_s, failalloc_inputs, workdir,
                               log, seed)
    res["failalloc"] = fa
    res["failalloc_cpu_s"] = fa_cpu
    for t, v in fa.items():
        if v.get("error"):
            res["failures"].append("failalloc %s: %s" % (t, v["error"]))
        elif v["crashes"]:
            res["failures"].append("failalloc %s: %d crashes: %s" % (t, v["crashes"],
                                                                     v["reports"][:2]))
    return res
