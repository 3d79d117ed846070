# SPDX-License-Identifier: GPL-2.0-or-later
"""The results page of tools/bench/run: OUT/benchmarks.md and OUT/bench-*.png from the rows
of one run (benchmarks.json). Ratios are taken round by round (prsmfs and its baseline ran
seconds apart in the same round) and reported as median [min–max] over the rounds.
   python3 tools/bench/report.py OUT/benchmarks.json   (rewrites the page from the json)"""
import collections
import json
import os
import re
import statistics
import sys

GIB = 1 << 30
COLORS = {"prsmfs": "tab:blue", "curl": "tab:green", "rclone": "tab:orange", "local": "tab:gray", "disk": "black"}


def med(xs):
    return statistics.median(xs) if xs else None


class Rows:
    def __init__(self, rows):
        self.by = collections.defaultdict(dict)  # (case, system) -> round -> row
        for r in rows:
            self.by[(r["case"], r["system"])][r["round"]] = r

    def has(self, case, system):
        return (case, system) in self.by

    def vals(self, case, system, key):
        return [r[key] for r in self.by.get((case, system), {}).values() if r.get(key) is not None]

    def ratio(self, a, b, key="mb_s", invert=False):
        """per-round ratios a/b of KEY (b/a with invert: for times), as a list"""
        ra, rb = self.by.get(a, {}), self.by.get(b, {})
        out = []
        for rnd in sorted(set(ra) & set(rb)):
            x, y = ra[rnd].get(key), rb[rnd].get(key)
            if x and y:
                out.append(y / x if invert else x / y)
        return out

    def load(self, *keys):
        return med([r["load1"] for k in keys for r in self.by.get(k, {}).values()])


def cell(text):
    """a table cell: a | even inside backticks ends the cell"""
    return text.replace("|", "\\|")


def fmt_range(xs, f="%.2f"):
    if not xs:
        return "–"
    return (f + " [" + f + "–" + f + "]") % (med(xs), min(xs), max(xs))


def cpu_per_gib(R, case, system, key):
    xs = [r[key] * GIB / r["bytes"] for r in R.by.get((case, system), {}).values()
          if r.get(key) is not None and r.get("bytes")]
    return med(xs)


def headline(R, doc):
    """(what, ratio list, target text, target value or None, kind, bottleneck) rows"""
    m = doc["meta"]
    S, B = "%d MiB" % m["size_mib"], "%d MiB" % m["big_mib"]
    perf = doc["notes"].get("perf_cold") or []
    top = "; ".join(p for p in perf[:4]) if perf else "no perf profile"
    rows = []

    def cold_bneck(case, sysb):
        d = cpu_per_gib(R, case, "prsmfs_sha", "server_cpu")
        c = cpu_per_gib(R, case, "prsmfs_sha", "client_cpu")
        b = cpu_per_gib(R, case, sysb, "client_cpu")
        bs = cpu_per_gib(R, case, sysb, "server_cpu")
        secs = med(R.vals(case, "prsmfs_sha", "seconds"))
        size = med(R.vals(case, "prsmfs_sha", "bytes"))
        if d is None or secs is None:
            return ""
        cap = med(R.vals("cold", "sha256sum", "mb_s"))
        if cap and sysb.endswith("_sha"):
            txt = ("`sha256sum` alone (coreutils, one thread, file in the page cache) runs at %.0f MB/s on"
                   " this CPU: every `| sha256sum` pipeline is capped there, prsmfs's at %.0f MB/s, %s's at"
                   " %.0f MB/s; daemon %.2f CPU-s/GiB + cat|sha256sum %.2f vs %s %.2f%s CPU-s/GiB on %d cores"
                   % (cap, med(R.vals(case, "prsmfs_sha", "mb_s")) or 0, sysb.replace("_sha", ""),
                      med(R.vals(case, sysb, "mb_s")) or 0, d, c or 0, sysb.replace("_sha", "|sha256sum"),
                      b or 0, " + rclone %.2f" % bs if bs else "", m["cores"]))
            hp = cpu_per_gib(R, case, "prsmfs_sha", "sha_held_s")
            hb = cpu_per_gib(R, case, sysb, "sha_held_s")
            if hp is not None and hb is not None:
                txt += ("; `sha256sum` itself was held off the CPU (waiting for a core or for input) %.2f s"
                        " per GiB in prsmfs's pipeline vs %.2f s in %s's: the daemon's and cat's work on the"
                        " second core spills onto sha256sum's (cat's pipe wake-ups land there when the other"
                        " core is busy). Moves it: fewer daemon cycles per byte" % (hp, hb, sysb.replace("_sha", "")))
            return txt
        busy = (d + (c or 0)) * size / GIB / secs
        txt = ("daemon %.2f CPU-s/GiB + cat|sha256sum %.2f vs %s %.2f%s CPU-s/GiB; %.1f of %d cores busy"
               " during the prsmfs read" % (d, c or 0, sysb.replace("_sha", "|sha256sum"), b or 0,
                                             " + rclone %.2f" % bs if bs else "", busy, m["cores"]))
        if busy > 0.8 * m["cores"]:
            txt += ": CPU-bound; perf (daemon, cold): %s. Moves it: fewer daemon cycles per byte" \
                   " (the symbols above), not more parallelism" % top
        else:
            txt += (": its own CPU time does not fill the cores; with load1 %.1f on %d cores the read waits for"
                    " CPU time (run queue) or for block fetches from nginx, whose files come from the same"
                    " disk (disk ceiling in the warm rows; fetch parallelism in the scaling rows)"
                    % (R.load((case, "prsmfs_sha")) or 0, m["cores"]))
        return txt

    def add(what, a, b, target=None, kind="faster", key="mb_s", invert=False, bneck=None):
        xs = R.ratio(a, b, key, invert)
        if not xs:
            return
        behind = med(xs) < 1.0 if kind == "faster" else med(xs) < 0.8
        if target is not None and med(xs) < target:
            behind = True
        rows.append((what, xs, target, kind, (bneck() if callable(bneck) else bneck) if behind else "",
                     R.load(a, b)))

    add("cold %s `cat | sha256sum` vs `curl | sha256sum`" % S, ("cold", "prsmfs_sha"), ("cold", "curl_sha"), 1.0,
        bneck=lambda: cold_bneck("cold", "curl_sha"))
    add("cold %s `cat | sha256sum` vs rclone mount cold" % S, ("cold", "prsmfs_sha"), ("cold", "rclone_sha"), 2.0,
        bneck=lambda: cold_bneck("cold", "rclone_sha"))
    add("cold %s `cat` vs rclone mount cold `cat` (the mounts alone, no sha256sum)" % S, ("cold", "prsmfs_cat"),
        ("cold", "rclone_cat"), 2.0, bneck=lambda: cold_bneck("cold", "rclone_cat"))
    add("cold %s `cat | sha256sum` vs `sha256sum` alone, file in the page cache (ceiling)" % S,
        ("cold", "prsmfs_sha"), ("cold", "sha256sum"), None, "ceiling", bneck=lambda: cold_bneck("cold", "curl_sha"))
    add("cold %s `cat` vs `curl -o /dev/null` (ceiling)" % S, ("cold", "prsmfs_cat"), ("cold", "curl"), None,
        "ceiling", bneck=lambda: cold_bneck("cold", "curl"))
    add("cold %s `cat | sha256sum` vs `curl | sha256sum`" % B, ("cold10", "prsmfs_sha"), ("cold10", "curl_sha"), 1.0,
        bneck=lambda: cold_bneck("cold10", "curl_sha"))
    add("cold %s `cat | sha256sum` vs rclone mount cold" % B, ("cold10", "prsmfs_sha"), ("cold10", "rclone_sha"),
        2.0, bneck=lambda: cold_bneck("cold10", "rclone_sha"))
    t1, t10 = R.vals("cold", "prsmfs_sha", "seconds"), R.vals("cold10", "prsmfs_sha", "seconds")
    if t1 and t10:
        xs = [b / a for a, b in zip(sorted(t1), sorted(t10))]
        rows.append(("time of %s / time of %s (cold, prsmfs; target ≤ 10.5)" % (B, S), [med(t10) / med(t1)] + xs,
                     10.5, "max", "", R.load(("cold", "prsmfs_sha"), ("cold10", "prsmfs_sha"))))
    rss = R.vals("cold10", "prsmfs_sha", "rss_mib")
    if rss:
        rows.append(("peak RSS of prsmfs reading %s cold, MiB (target < 128)" % B, rss, 128, "max", "",
                     R.load(("cold10", "prsmfs_sha"))))
    wb = lambda: ("daemon %.2f CPU-s/GiB warm vs rclone %.2f" % (
        cpu_per_gib(R, "warm", "prsmfs", "server_cpu") or 0, cpu_per_gib(R, "warm", "rclone", "server_cpu") or 0))
    add("warm %s (disk cache, page cache dropped) vs rclone warm" % S, ("warm", "prsmfs"), ("warm", "rclone"), 1.5,
        bneck=wb)
    add("warm %s vs local disk `cat`" % S, ("warm", "prsmfs"), ("warm", "local"), None, bneck=wb)
    add("warm %s vs the disk's ceiling (dd iflag=direct)" % S, ("warm", "prsmfs"), ("warm", "disk_direct"), None,
        "ceiling", bneck=wb)
    add("warm vs the FUSE ceiling (read-bench.sh: fuse-ceiling serving from memory)", ("read-bench", "prsm_warm"),
        ("read-bench", "ceil_cold"), None, "ceiling", key="value", invert=True, bneck=wb)
    add("cold read with the js-ipfs node as block source vs its `/api/v0/cat` to disk + sha256sum (read-bench.sh)",
        ("read-bench", "js_prsm_cold"), ("read-bench", "js_dl_verify"), None, key="value", invert=True,
        bneck="the node: its block/get RPC per block (see read-bench's table below: curl of cat is the node's"
        " own ceiling)")
    add("page-cache re-read vs local page cache", ("pagecache", "prsmfs"), ("pagecache", "local"), None, "ceiling",
        bneck="FUSE page-cache path (kernel), not the daemon: the daemon sees no requests on a re-read")
    for bs in ("4k", "1m"):
        for j in (1, 8):
            c = "fio_%s_%dj" % (bs, j)
            for temp in ("cold", "warm"):
                add("fio %s random reads, %d job(s), %s, vs rclone %s" % (bs.upper().replace("K", " KiB").replace(
                    "M", " MiB"), j, temp, temp), (c, "prsmfs_" + temp), (c, "rclone_" + temp), None, key="ops_s",
                    bneck=lambda c=c, temp=temp: "daemon %.1f CPU-s over the %d s run" % (
                        med(R.vals(c, "prsmfs_" + temp, "server_cpu")) or 0, m["fio_runtime_s"]))
            add("fio %s, %d job(s), warm, vs local disk (page cache dropped)" % (bs, j), (c, "prsmfs_warm"),
                (c, "local"), None, key="ops_s", bneck=lambda c=c: "daemon %.1f CPU-s over the %d s run; every"
                " read is a FUSE round trip plus a cache-file read" % (
                    med(R.vals(c, "prsmfs_warm", "server_cpu")) or 0, m["fio_runtime_s"]))
    pm = doc["notes"].get("perf_meta") or {}
    share = lambda name: next((float(x.split("%")[0]) for x in pm.get("comm", []) if x.endswith(" " + name)), 0.0)
    sym = lambda who: next((x.split()[0] + " " + x.split()[3] for x in pm.get("symbol", [])
                            if x.split()[1] == who), "")
    meta_perf = ("; perf -a over one more second `find`: CPU idle %.0f%% (one lister: each directory's"
                 " getdents waits for a FUSE thread to wake, answer from the index and wake it back), daemon"
                 " %.0f%% (top: %s), find %.0f%% (top: %s). The kernel keeps the listings of immutable"
                 " trees only (.ipfs/CID, its own rows): one of a mutable directory brings no attributes, so"
                 " `ls -l` would look up each entry past its 1 s timeout (measured: `ls -lR` 5x slower,"
                 " bench-notes). Moves it: fewer index queries per batch"
                 % (share("swapper"), share("prsmfs"), sym("prsmfs") or "–", share("find"), sym("find") or "–")
                 ) if pm.get("comm") else " (no perf profile in this run)"
    for tool in ("ls", "find"):
        for phase, base in (("second", "second"), ("first", "first"), ("dropped", "dropped")):
            tgt = 0.5 if (tool, phase) == ("ls", "second") else None
            add("`%s -lR` %s listing vs local disk" % (tool, phase) if tool == "ls" else
                "`find` %s listing vs local disk" % phase, ("meta_%s_%s" % (tool, phase), "prsmfs"),
                ("meta_%s_%s" % (tool, base), "local"), tgt, key="seconds", invert=True,
                bneck=lambda t=tool, p=phase: "measured: daemon %.1f CPU-s in %.1f s, the rest is the kernel's"
                " FUSE round trips and the run queue%s" % (
                    med(R.vals("meta_%s_%s" % (t, p), "prsmfs", "server_cpu")) or 0,
                    med(R.vals("meta_%s_%s" % (t, p), "prsmfs", "seconds")) or 0, meta_perf))
            add("`%s` %s listing of the tree as .ipfs/CID (immutable: the kernel keeps its listings) vs"
                " local disk" % ("ls -lR" if tool == "ls" else tool, phase),
                ("meta_%s_%s" % (tool, phase), "prsmfs_ipfs"), ("meta_%s_%s" % (tool, base), "local"), None,
                key="seconds", invert=True, bneck=lambda t=tool, p=phase: "measured: daemon %.1f CPU-s in"
                " %.1f s; the first listing fetches the tree's blocks, a dropped one asks the daemon again" % (
                    med(R.vals("meta_%s_%s" % (t, p), "prsmfs_ipfs", "server_cpu")) or 0,
                    med(R.vals("meta_%s_%s" % (t, p), "prsmfs_ipfs", "seconds")) or 0))
            add("`%s` %s listing vs rclone" % (tool, phase), ("meta_%s_%s" % (tool, phase), "prsmfs"),
                ("meta_%s_%s" % (tool, phase), "rclone"), None, key="seconds", invert=True,
                bneck="daemon per-entry work (see the row against local disk)")
    lb = lambda c, s: lambda: "daemon %.2f CPU-s/GiB; %s" % (
        cpu_per_gib(R, c, s, "server_cpu") or 0, "page faults come as 4-128 KiB FUSE reads" if "mmap" in c else
        "one FUSE read per call")
    add("load: cold mmap, 8 threads vs prsmfs cold sequential read() (target ≥ 0.8)", ("load_mmap8", "prsmfs_cold"),
        ("load_seq", "prsmfs_cold"), 0.8, "ceiling", bneck=lb("load_mmap8", "prsmfs_cold"))
    def pread_bneck(state, one="load_pread1", eight="load_pread8"):
        d = cpu_per_gib(R, one, state, "server_cpu")
        rate = med(R.vals(one, state, "mb_s"))
        if d is None or not rate:
            return lb(eight, state)()
        busy = d * rate * 1e6 / GIB
        return ("daemon %.2f CPU-s/GiB: one thread's %.0f MB/s already keeps %.1f of %d cores busy in the daemon"
                " alone (readahead fetches in parallel for it), so 8 threads have no CPU left to gain;"
                " moves it: fewer daemon cycles per byte" % (d, rate, busy, m["cores"]))
    add("load: cold 8-thread 4 MiB preads on one fd vs 1 thread (target ≥ 1.5)", ("load_pread8", "prsmfs_cold"),
        ("load_pread1", "prsmfs_cold"), 1.5, bneck=lambda: pread_bneck("prsmfs_cold"))
    add("load: warm (disk cache) 8-thread 4 MiB preads on one fd vs 1 thread (target ≥ 1.5)",
        ("load_pread8", "prsmfs_warm"), ("load_pread1", "prsmfs_warm"), 1.5,
        bneck=lambda: pread_bneck("prsmfs_warm"))
    add("load: cold 8-thread preads on one fd vs 1 thread, whole tensors in a shuffled order (a loader walking"
        " its model, not the file)", ("load_shuf8", "prsmfs_cold"), ("load_shuf1", "prsmfs_cold"), None,
        bneck=lambda: pread_bneck("prsmfs_cold", "load_shuf1", "load_shuf8"))
    def remote_bneck():
        ms = m.get("remote_ms", 20)
        r1, r8 = med(R.vals("remote_pread1", "prsmfs_cold", "mb_s")), med(R.vals("remote_pread8", "prsmfs_cold",
                                                                                "mb_s"))
        if not r1 or not r8:
            return ""
        # blocks in flight at once = rate x round trip / block size (1 MiB blocks)
        return ("blocks in flight (rate × %d ms / 1 MiB): %.1f for one thread, %.1f for 8, against the"
                " readahead's %d fetch workers (parallel_downloads): they fetch ahead of every reader of the file,"
                " so one thread already has them all busy and 8 threads reading neighbouring pieces wait on blocks"
                " already in flight; moves it: more parallel_downloads for a far source (for 1 thread and 8"
                " alike)" % (ms, r1 * ms / 1e3 / 1.048576, r8 * ms / 1e3 / 1.048576, m.get("parallel_downloads", 8)))

    add("load, block source %d ms away: cold 8-thread 4 MiB preads on one fd vs 1 thread (target ≥ 1.5)"
        % m.get("remote_ms", 20), ("remote_pread8", "prsmfs_cold"), ("remote_pread1", "prsmfs_cold"), 1.5,
        bneck=remote_bneck)
    add("load: `prsmctl prefetch` rate vs cold sequential read() (target ≥ 0.9)", ("load_prefetch", "prsmfs_cold"),
        ("load_seq", "prsmfs_cold"), 0.9, "ceiling", bneck=lb("load_prefetch", "prsmfs_cold"))
    for mode in ("seq", "mmap1", "mmap8", "pread8", "shuf8"):
        add("load: cold %s vs rclone cold" % mode, ("load_" + mode, "prsmfs_cold"), ("load_" + mode, "rclone_cold"),
            None, bneck=lb("load_" + mode, "prsmfs_cold"))
        add("load: cold %s vs local disk" % mode, ("load_" + mode, "prsmfs_cold"), ("load_" + mode, "local"), None,
            "ceiling", bneck=lb("load_" + mode, "prsmfs_cold"))
    cp = R.vals("load_cp_in_mount", "prsmfs_warm", "seconds")
    if cp:
        rows.append(("load: `cp` of the %d MiB model inside the mount, ms (target < 50)" % m["model_mib"],
                     [x * 1000 for x in cp], 50, "max", "", R.load(("load_cp_in_mount", "prsmfs_warm"))))
    cpe = R.vals("load_cp_empty_local", "local", "seconds")
    if cpe:
        rows.append(("load: `cp` of an empty file on local disk, ms (the cp process's own start and exit)",
                     [x * 1000 for x in cpe], None, "plain", "", R.load(("load_cp_empty_local", "local"))))
    for name, label in (("write-shared", "node sharing the cores"), ("write-own-core", "node on a core of its own")):
        add("write %s: `cp` in until pinned vs the node's `add` (target ≥ 0.8)" % label, (name, "cp_pinned"),
            (name, "add"), 0.8, key="value", invert=True, bneck=lambda n=name: "node CPU %.1f s via the mount vs"
            " %.1f s via add; daemon %.1f s" % (med(R.vals(n, "mount_node_cpu", "value")) or 0,
                                             med(R.vals(n, "add_node_cpu", "value")) or 0,
                                             med(R.vals(n, "mount_daemon_cpu", "value")) or 0))
        add("write %s: `cp` in until close vs local disk cp+fsync" % label, (name, "cp_close"), (name, "cp_local"),
            None, key="value", invert=True, bneck="upload to the node (its CPU) after close")
        add("write %s: `rsync -a` small files, until returned, vs local" % label, (name, "rsync_mount"),
            (name, "rsync_local"), None, key="value", invert=True,
            bneck=lambda n=name: "daemon %.1f CPU-s, node %.1f CPU-s for the tree" % (
                med(R.vals(n, "rsync_daemon_cpu", "value")) or 0, med(R.vals(n, "rsync_node_cpu", "value")) or 0))
    return rows


def system_table(R, cases, out):
    out.append("| case | system | MB/s or ops/s, median [range] | seconds, median [range] | peak RSS MiB | "
               "server CPU-s/GiB | client CPU-s/GiB | load1 |")
    out.append("|---|---|---|---|---|---|---|---|")
    for (case, system), rounds in sorted(R.by.items()):
        if case not in cases:
            continue
        rate = R.vals(case, system, "mb_s")
        ops = R.vals(case, system, "ops_s")
        rtxt = fmt_range(ops, "%.0f") + " ops/s" if ops else fmt_range(rate, "%.0f") + " MB/s" if rate else ""
        if ops and rate:
            rtxt += "; " + fmt_range(rate, "%.0f") + " MB/s"
        rss = R.vals(case, system, "rss_mib")
        sc, cc = cpu_per_gib(R, case, system, "server_cpu"), cpu_per_gib(R, case, system, "client_cpu")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %.2f |" % (
            case, system, rtxt, fmt_range(R.vals(case, system, "seconds"), "%.3f"),
            "%.0f" % max(rss) if rss else "", "%.2f" % sc if sc is not None else "",
            "%.2f" % cc if cc is not None else "", R.load((case, system))))


def bars(ax, R, groups, key):
    """one bar per (case, system) with data: median, range as error bar, grouped by case"""
    x, ticks, labels = 0, [], []
    for case, systems in groups:
        start = x
        for s in systems:
            v = R.vals(case, s, key)
            if not v:
                continue
            ax.bar(x, med(v), color=COLORS.get(s.split("_")[0], "tab:purple"),
                   yerr=[[med(v) - min(v)], [max(v) - med(v)]], capsize=2)
            ax.text(x, 0, s, rotation=90, ha="center", va="bottom", fontsize=7)
            x += 1
        if x > start:
            ticks.append((start + x - 1) / 2)
            labels.append(case)
            x += 1
    ax.set_xticks(ticks, labels)


def charts(doc, R, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    groups = [("cold", ["prsmfs_sha", "prsmfs_cat", "curl_sha", "curl", "rclone_sha", "rclone_cat", "sha256sum"]),
              ("cold10", ["prsmfs_sha", "curl_sha", "curl", "rclone_sha"]),
              ("warm", ["prsmfs", "rclone", "local", "disk_direct"]), ("pagecache", ["prsmfs", "rclone", "local"]),
              ("load_seq", ["prsmfs_cold", "rclone_cold", "local", "prsmfs_warm", "rclone_warm"]),
              ("load_mmap8", ["prsmfs_cold", "rclone_cold", "local", "prsmfs_warm", "rclone_warm"]),
              ("load_pread8", ["prsmfs_cold", "rclone_cold", "local", "prsmfs_warm", "rclone_warm"])]
    fig, ax = plt.subplots(figsize=(12, 5))
    bars(ax, R, groups, "mb_s")
    ax.set_ylabel("MB/s (median, bars: range)")
    ax.set_title("throughput by case (%s, %s)" % (doc["meta"]["commit"], doc["meta"]["date"]))
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bench-throughput.png"), dpi=90)
    plt.close(fig)
    made.append("bench-throughput.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    pds = ["1", "2", "4", "8", "16", "32"]
    for ax, series, title in ((axes[0], [("pd", "nginx"), ("remote_pd", "%d ms away" % doc["meta"].get("remote_ms", 20))],
                               "parallel_downloads"), (axes[1], [("src", "nginx")], "block sources")):
        for prefix, label in series:
            names = ["%s%s" % (prefix, n) for n in (pds if "pd" in prefix else ["1", "2", "3"])]
            xs = [n for n in names if R.vals("scale", n, "mb_s")]
            ys = [med(R.vals("scale", n, "mb_s")) for n in xs]
            lo = [y - min(R.vals("scale", n, "mb_s")) for n, y in zip(xs, ys)]
            hi = [max(R.vals("scale", n, "mb_s")) - y for n, y in zip(xs, ys)]
            if xs:
                ax.errorbar([x[len(prefix):] for x in xs], ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
        ax.set_title("cold `cat` vs " + title)
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    ax = axes[2]
    for s, c in (("prsmfs_sha", "tab:blue"), ("curl_sha", "tab:green"), ("rclone_sha", "tab:orange")):
        pts = [(doc["meta"][k], med(R.vals(case, s, "seconds"))) for case, k in (("cold", "size_mib"),
                                                                               ("cold10", "big_mib"))
               if R.vals(case, s, "seconds")]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=c, label=s)
    ax.set_xlabel("MiB")
    ax.set_ylabel("seconds (cold)")
    ax.set_title("size scaling")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bench-scaling.png"), dpi=90)
    plt.close(fig)
    made.append("bench-scaling.png")

    fig, ax = plt.subplots(figsize=(12, 4))
    fio_systems = ["prsmfs_cold", "rclone_cold", "prsmfs_warm", "rclone_warm", "local"]
    bars(ax, R, [("fio_%s_%dj" % (b, j), fio_systems) for b in ("4k", "1m") for j in (1, 8)], "ops_s")
    ax.set_yscale("log")
    ax.set_ylabel("IOPS (median, bars: range; log)")
    ax.set_title("fio random reads")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bench-fio.png"), dpi=90)
    plt.close(fig)
    made.append("bench-fio.png")
    return made


def case_of(row):
    """The case of tools/bench/run (--cases) that recorded a row."""
    c = row["case"].split("_")[0]
    return {"write-shared": "write", "write-own-core": "write", "read-bench": "ceiling",
            "pagecache": "warm"}.get(c, c)


def write(doc, out_dir):
    R = Rows(doc["rows"])
    m = doc["meta"]
    out = ["# prsmfs benchmarks", ""]
    out.append("Current figures from one run of `%s` (%s, commit %s, %s; %s rounds per case, prsmfs and its"
               " baselines alternating inside each round). Machine: %s cores (%s), %s GiB, kernel %s; %s;"
               " %s. Load average (1/5/15 min) %s at the start, %s at the end: other work shares these cores,"
               " so compare ratios (measured seconds apart in the same round), not absolute figures."
               % (m["command"], m["date"], m["commit"], "%.1f min" % m["minutes"], m["rounds"], m["cores"],
                  m["cpu"], m["memory_gib"], m["kernel"], m["rclone"], m["fio"], " ".join(m["load_start"]),
                  " ".join(m["load_end"])))
    for rr in m.get("reruns", []):
        out[-1] += (" Cases %s re-run since, their rows replacing this run's: `%s` (%s, commit %s, %.1f min,"
                    " load %s → %s)." % (", ".join(rr["cases"]), rr["command"], rr["date"], rr["commit"],
                                          rr["minutes"], " ".join(rr["load_start"]), " ".join(rr["load_end"])))
    disk = R.vals("warm", "disk_direct", "mb_s")
    if disk:
        out[-1] += " The disk's ceiling (dd bs=16M iflag=direct): %s MB/s." % fmt_range(disk, "%.0f")
    if m["status"] != "complete":
        ran = {case_of(r) for r in doc["rows"]}
        missing = [c for c in m["cases"] if c not in ran]
        out += ["", "**This run is incomplete: %s. Cases without figures: %s; a case cut mid-way has fewer"
                " rounds in some rows (the round count is given).**" % (m["failure"], ", ".join(missing) or "none")]
    out += ["", "The experiment history (how the figures got here) is in [bench-notes.md](bench-notes.md);"
            " every round of this run is in [benchmarks.json](benchmarks.json).", "",
            "## Headline ratios", "",
            "Ratio > 1: prsmfs is faster (for times: takes less time). Median over the rounds [range];"
            " load1: median 1-minute load average during the rows. Where prsmfs is behind a baseline or below"
            " 0.8× a ceiling (or below its target), the last column names what the run measured as the limit.",
            "", "| case | ratio, median [range] | target | load1 | bottleneck (measured) |", "|---|---|---|---|---|"]
    for what, xs, target, kind, bneck, ld in headline(R, doc):
        if kind in ("plain", "max"):
            val = "%.2f [%.2f–%.2f]" % (xs[0], min(xs[1:] or xs), max(xs[1:] or xs)) if "time of" in what else \
                fmt_range(xs)
        else:
            val = fmt_range(xs) + "× (%d round%s)" % (len(xs), "" if len(xs) == 1 else "s")
        if kind == "max":  # an upper bound: the median (for "time of", the ratio of medians) must not pass it
            got = xs[0] if "time of" in what else med(xs)
            tg, mark = "≤ %g" % target, (" ✓" if got <= target else " ✗")
        else:
            tg = "≥ %.1f×" % target if target is not None else ""
            mark = " ✗" if target is not None and med(xs) < target else (" ✓" if target is not None else "")
        out.append("| %s | %s | %s%s | %s | %s |" % (cell(what), val, tg, mark, "%.2f" % ld if ld else "",
                                                    cell(bneck)))
    charts_made = charts(doc, R, out_dir)
    if charts_made:
        out += [""] + ["![%s](%s)" % (c[6:-4], c) for c in charts_made]
    if doc["notes"].get("perf_cold"):
        out += ["", "perf of the daemon during one extra cold `cat | sha256sum` of the %d MiB file "
                "(`perf record -F 499 -g -p PID`, self time, dso and symbol):" % m["size_mib"], "", "```"]
        out += [re.sub(r"( -)+$", "", line) for line in doc["notes"]["perf_cold"]] + ["```"]
    sections = [("Sequential reads: cold, warm, page cache", ("cold", "cold10", "warm", "pagecache")),
                ("Random reads (fio, %d s per run, psync)" % m["fio_runtime_s"],
                 tuple("fio_%s_%dj" % (b, j) for b in ("4k", "1m") for j in (1, 8))),
                ("Model loading (%d MiB safetensors-shaped file; load-probe, in-process time)" % m["model_mib"],
                 ("load_seq", "load_mmap1", "load_mmap8", "load_pread1", "load_pread8", "load_shuf1",
                  "load_shuf8", "load_prefetch",
                  "load_after_prefetch", "load_cp_in_mount", "load_cp_empty_local", "remote_seq", "remote_pread1",
                  "remote_pread8")),
                ("Metadata (%d entries; seconds)" % m["files"], tuple(
                    "meta_%s_%s" % (t, p) for t in ("ls", "find") for p in ("first", "second", "dropped"))),
                ("Scaling: parallel_downloads (pdN; remote_pdN: from a gateway %d ms away) and block sources"
                 " (srcN), cold `cat`" % m.get("remote_ms", 20),
                 ("scale",))]
    for title, cases in sections:
        if any(c for (c, _) in R.by if c in cases):
            out += ["", "## " + title, ""]
            system_table(R, cases, out)
    for name, title in (("read-bench", "tools/bench/read-bench.sh (PHASES=\"warm jsipfs\"): FUSE ceiling, mmap,"
                         " the js-ipfs node as block source"),
                        ("write-shared", "tools/bench/write-bench.sh: writes, the node sharing the cores"),
                        ("write-own-core", "tools/bench/write-bench.sh with NODE_CPUS=1: the node on a core of its"
                         " own")):
        if name in doc["notes"]:
            out += ["", "## " + title, "", doc["notes"][name].strip()]
    out += ["", "## How to run", "", "```", "sudo tools/bench/run            # full, bounded by --budget (58 min by default);"
            " writes docs/benchmarks.{md,json} and docs/bench-*.png",
            "sudo tools/bench/run --quick    # small sizes, 2 rounds, --budget 9.5; results in a temporary directory",
            "sudo tools/bench/run --cases cold,warm --size 256 --out /tmp/b", "```",
            "", "Content: %s." % "; ".join("%s %d bytes, %s" % (k, v["bytes"], v["cid"])
                                           for k, v in m.get("content", {}).items())]
    with open(os.path.join(out_dir, "benchmarks.md"), "w") as f:
        f.write("\n".join(out) + "\n")


def merge(base, new):
    """The rows of new's cases replace base's (a case re-run after a change, say); the re-run
    is named under the page's header."""
    cases = set(new["meta"]["cases"])
    base["rows"] = [r for r in base["rows"] if case_of(r) not in cases] + new["rows"]
    base["notes"].update(new["notes"])  # what its cases noted (profiles, scripts' tables)
    nm = new["meta"]
    # an earlier re-run whose cases this one re-ran has no rows left on the page
    base["meta"]["reruns"] = [r for r in base["meta"].get("reruns", []) if not set(r["cases"]) <= cases]
    base["meta"]["reruns"].append(
        {k: nm[k] for k in ("cases", "commit", "command", "date", "minutes", "load_start", "load_end")})
    return base


if __name__ == "__main__":
    # report.py RESULTS.json | report.py --merge NEW.json INTO.json
    path = sys.argv[-1]
    d = json.load(open(path))
    if len(sys.argv) == 4 and sys.argv[1] == "--merge":
        d = merge(d, json.load(open(sys.argv[2])))
        with open(path, "w") as f:
            json.dump(d, f, indent=1)
    write(d, os.path.dirname(os.path.abspath(path)))
