# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon mounts, answers ls/stat/df from its index, keeps its index across restarts,
unmounts cleanly on SIGTERM/SIGINT/fusermount3 -u, and refuses bad command lines and
configs with one line and no mount left behind."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from conftest import node_config
from mount import Mount, is_mounted, prsmfs_binary, tool_binary


def test_mount__real_node__ls_stat_df_work(mount_factory, ipfs_node):
    m = mount_factory(config=node_config([ipfs_node]))
    assert os.listdir(m.mountpoint) == []
    st = os.stat(m.mountpoint)
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_ino == 1
    assert abs(st.st_mtime - time.time()) < 600  # the root was created now, not in 1970
    vfs = os.statvfs(m.mountpoint)
    assert vfs.f_bsize == 1024 * 1024 and vfs.f_blocks > 0 and vfs.f_namemax == 255
    out = subprocess.run(["df", "-h", m.mountpoint], capture_output=True, text=True, check=True)
    assert "prsmfs" in out.stdout
    out = subprocess.run(["ls", "-la", m.mountpoint], capture_output=True, text=True, check=True)
    assert out.stdout.count("\n") >= 3  # total, ., ..


def test_mkdir__restart__tree_kept(mount_factory):
    m = mount_factory()
    os.makedirs(m.path("a", "b"))
    os.mkdir(m.path("c"), 0o700)
    st = os.stat(m.path("c"))
    assert stat.S_IMODE(st.st_mode) == 0o700 & ~current_umask()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    with pytest.raises(FileExistsError):
        os.mkdir(m.path("c"))
    with pytest.raises(FileNotFoundError):
        os.stat(m.path("nope"))
    m.restart()
    assert sorted(os.listdir(m.mountpoint)) == ["a", "c"]
    assert os.listdir(m.path("a")) == ["b"]
    assert os.stat(m.path("a")).st_nlink == 3


def test_readdir__many_entries__all_listed_once(mount_factory):
    m = mount_factory()
    names = ["d%04d" % i for i in range(1500)]
    for n in names:
        os.mkdir(m.path(n))
    assert sorted(os.listdir(m.mountpoint)) == names
    out = subprocess.run(["ls", "-1", m.mountpoint], capture_output=True, text=True, check=True)
    assert out.stdout.split() == names


def test_prsmctl__status_and_check__answered_by_daemon(mount_factory):
    m = mount_factory()
    os.mkdir(m.path("sub"))
    r = subprocess.run([tool_binary("prsmctl"), "status", m.path("sub")], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ok"] is True and st["mountpoint"] == m.mountpoint and st["inodes"] == 3  # root, .ipfs, sub
    r = subprocess.run([tool_binary("prsmctl"), "check", m.mountpoint], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and json.loads(r.stdout)["index"] == "ok", r.stderr
    r = subprocess.run([tool_binary("prsmctl"), "status", m.workdir], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1 and "no prsmfs mount found at %s" % m.workdir in r.stderr, r.stderr


def current_umask():
    u = os.umask(0)
    os.umask(u)
    return u


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "fusermount"])
def test_unmount__signal_or_fusermount__clean_exit(mount_factory, how):
    m = mount_factory()
    if how == "fusermount":
        subprocess.run(["fusermount3", "-u", m.mountpoint], check=True)
    else:
        m.proc.send_signal(getattr(signal, how))
    assert m.proc.wait(timeout=10) == 0
    assert not is_mounted(m.mountpoint)


def test_sigterm_with_files_open__handles_freed_clean_exit(mount_factory, ipfs_node):
    """Files still open when the daemon stops (the kernel never sends their RELEASE, as when
    one is still queued at the stop): the daemon frees their handles (a reader of an
    uploaded file, a writer never flushed) and exits 0 without a sanitizer report."""
    m = mount_factory(config=node_config([ipfs_node]))
    with open(m.path("done"), "wb") as f:
        f.write(b"uploaded bytes\n" * 1000)
    fd = os.open(m.path("done"), os.O_RDONLY)
    os.fsync(fd)  # uploaded and pinned: the next open reads it by its CID
    os.close(fd)
    reader = os.open(m.path("done"), os.O_RDONLY)
    writer = os.open(m.path("open"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert os.read(reader, 8) == b"uploaded"
        os.write(writer, b"never closed")
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=20) == 0, m.stderr()
    finally:
        for fd in (reader, writer):
            try:
                os.close(fd)
            except OSError:
                pass  # the connection is gone
    assert "2 file handle(s) the kernel did not release" in m.stderr()
    m.check_stderr()


def test_kill9__restart__stale_mount_recovered(mount_factory):
    m = mount_factory()
    os.mkdir(m.path("kept"))
    m.kill(signal.SIGKILL)
    with pytest.raises(OSError):
        os.listdir(m.mountpoint)  # ENOTCONN: the stale mount of a dead daemon
    # start a new daemon on the same, still stale, mount point
    m2 = Mount(m.workdir, config=m.config, name=os.path.basename(m.mountpoint))
    m.proc = None
    try:
        m2.start()
        assert os.listdir(m2.mountpoint) == ["kept"]
    finally:
        m2.stop()


def run_prsmfs(args, timeout=20):
    return subprocess.run([prsmfs_binary()] + args, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_and_version__exit_zero():
    r = run_prsmfs(["--help"])
    assert r.returncode == 0 and "usage:" in r.stdout and "max_cache_size" in r.stdout
    r = run_prsmfs(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("prsmfs ")


BAD_CONFIGS = [
    ("{not json", "config file"),
    ('{"timeout": 30, "bogus_key": 1}', "'bogus_key': unknown key"),
    ('{"timeout": "soon"}', "'timeout': expected a number"),
    ('{"parallel_uploads": 0}', "'parallel_uploads': 0 is out of range"),
    ('{"max_chunk_size": 8}', "'max_chunk_size': 8 is out of range"),
    ('{"content_cache_enabled": 1}', "'content_cache_enabled': expected true or false"),
    ('{"rpc_nodes": ["ftp://x"]}', "is not an http:// or https:// URL"),
    ('{"rpc_nodes": [], "gateway_nodes": []}', "nothing to read from"),
    ('{"retry_base_delay": 10, "retry_max_delay": 1}', "exceeds 'retry_max_delay'"),
    ("[1, 2]", "top level must be a JSON object"),
]


@pytest.mark.parametrize("text,reason", BAD_CONFIGS)
def test_bad_config__exits_nonzero_one_line_no_mount(workdir, text, reason):
    cfg = os.path.join(workdir, "bad.json")
    with open(cfg, "w") as f:
        f.write(text)
    mp = os.path.join(workdir, "mnt")
    os.mkdir(mp)
    r = run_prsmfs(["-f", "--config=" + cfg, "-o", "state_dir=%s/s,cache_dir=%s/c" % (workdir, workdir), mp])
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert reason in lines[0] and (cfg in lines[0] or "config:" in lines[0]), lines[0]
    assert not is_mounted(mp)


BAD_CMDLINES = [
    (["-o", "timeout=abc"], "option -o 'timeout'"),
    (["-o", "max_cache_size=12Q"], "'max_cache_size': '12Q' is not a valid size"),
    (["-o", "no_such_fuse_option"], "unknown option"),
    (["-o", "profile=fancy"], "expected default or legacy"),
    (["--config=/nonexistent/prsmfs.json"], "/nonexistent/prsmfs.json"),
]


@pytest.mark.parametrize("args,reason", BAD_CMDLINES)
def test_bad_cmdline__exits_nonzero_one_line_no_mount(workdir, args, reason):
    mp = os.path.join(workdir, "mnt")
    os.mkdir(mp)
    r = run_prsmfs(["-f", "-o", "state_dir=%s/s,cache_dir=%s/c" % (workdir, workdir)] + args + [mp])
    assert r.returncode == 1, r.stderr
    assert r.returncode > 0  # not killed by a signal: no core dump
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], r.stderr
    assert not is_mounted(mp)


def test_fstab_form__source_then_mountpoint__mounts(workdir):
    """mount.fuse3 runs 'prsmfs SOURCE MOUNTPOINT -o opts' for fstab lines (fuse.prsmfs, or
    type fuse with PROGRAM#SOURCE, used here to name the built binary)."""
    m = Mount(workdir, name="fstab")
    with open(m.config_path, "w") as f:
        json.dump(m.config, f)
    subprocess.run(["mount", "-t", "fuse", "-o", "config=" + m.config_path,
                    prsmfs_binary() + "#prsmfs", m.mountpoint], check=True, timeout=20)
    try:
        assert os.listdir(m.mountpoint) == []
        assert os.statvfs(m.mountpoint).f_namemax == 255
    finally:
        subprocess.run(["fusermount3", "-u", m.mountpoint], check=True)


def test_no_mountpoint__exits_nonzero():
    r = run_prsmfs([])
    assert r.returncode == 1 and "no mount point" in r.stderr


CRASH_CASE = '''
import os, signal, sys, time
sys.path.insert(0, {support!r})
sys.path.insert(0, {integration!r})
from conftest import *  # noqa: the real fixtures

def test_daemon_crashes_mid_test(mount_factory):
    m = mount_factory()
    os.mkdir(m.path("x"))
    os.kill(m.proc.pid, signal.SIGSEGV)
    time.sleep(0.5)
    try:
        os.listdir(m.mountpoint)
    except OSError:
        pass
'''


def test_harness__daemon_crash__reported_as_failure_not_hang(workdir):
    """A daemon that crashes during a test makes that test fail quickly, with the reason,
    and leaves no process or mount behind."""
    here = os.path.dirname(os.path.abspath(__file__))
    case = os.path.join(workdir, "crash_case_test.py")
    with open(case, "w") as f:
        f.write(CRASH_CASE.format(support=os.path.join(os.path.dirname(here), "support"),
                                  integration=here))
    t0 = time.monotonic()
    # a basetemp of its own (beside workdir, not in it: the checks below look for workdir):
    # by default the inner pytest would prune old numbered directories under
    # /tmp/pytest-of-<user>, earlier sessions' with their node repositories (suspected: CI
    # once measured 104 s here)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", workdir, "--basetemp",
                        os.path.join(os.path.dirname(workdir), "inner-" + os.path.basename(workdir)),
                        case],
                       capture_output=True, text=True, timeout=120, cwd=workdir)
    elapsed = time.monotonic() - t0
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "prsmfs died during the test" in out, out
    assert elapsed < 60
    leftover = subprocess.run(["pgrep", "-f", "crash_case_test|" + workdir + "/m0"],
                              capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
    with open("/proc/self/mountinfo") as f:
        assert workdir not in f.read()


PIPE_MAX = "/proc/sys/fs/pipe-max-size"


def mount_bdi(mountpoint):
    """The bdi (MAJ:MIN) of the FUSE mount at mountpoint, from mountinfo."""
    bdi = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mountpoint and " - fuse" in line:
                bdi = fields[2]
    return bdi


@pytest.mark.skipif(os.geteuid() != 0, reason="kernel tuning is done as root only")
@pytest.mark.parametrize("before", [1 << 20, 4 << 20])
def test_mount_as_root__kernel_tuned_for_1mib_replies(mount_factory, before):
    """As root the daemon raises its bdi's readahead to one block and fs.pipe-max-size to
    the 2 MiB a spliced 1 MiB reply needs (libfuse falls back to copying otherwise), and
    never lowers a larger pipe-max-size."""
    with open(PIPE_MAX) as f:
        saved = f.read().strip()
    try:
        with open(PIPE_MAX, "w") as f:
            f.write("%d\n" % before)
        m = mount_factory()
        with open(PIPE_MAX) as f:
            assert int(f.read()) == max(before, 2 << 20)
        bdi = mount_bdi(m.mountpoint)
        assert bdi is not None
        with open("/sys/class/bdi/%s/read_ahead_kb" % bdi) as f:
            assert int(f.read()) == 1024
    finally:
        with open(PIPE_MAX, "w") as f:
            f.write(saved + "\n")
