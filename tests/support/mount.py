# SPDX-License-Identifier: GPL-2.0-or-later
"""A real prsmfs mount for tests.

Mount() starts the daemon in the foreground (-f) on a temporary mount point with a config
file of its own, waits for the mount (failing at once if the daemon exits), and on stop()
unmounts, waits for the daemon, and raises DaemonFailure if the daemon crashed, hung or
printed a sanitizer report. Every process it starts is stopped by PID in every outcome.
"""
import json
import os
import signal
import sqlite3
import subprocess
import time

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
)


def daemon_stacks(pid):
    """Where each thread of process pid waits: kernel stacks, then gdb's backtraces."""
    out = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid)):
        try:
            with open("/proc/%d/task/%s/stack" % (pid, tid)) as f:
                top = f.read().splitlines()[:3]
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
        except OSError:
            continue
        out.append("%s %s: %s" % (tid, comm, " < ".join(x.split()[-1] for x in top)))
    # the kernel stacks show only that a thread waits (a futex, a poll); gdb names the
    # function and the lock it waits in, which is what a shutdown that never ends needs
    try:
        g = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                            "thread apply all bt 12"], capture_output=True, text=True,
                           timeout=60)
        out.append("gdb:\n" + g.stdout[-20000:])
    except (OSError, subprocess.TimeoutExpired) as e:
        out.append("gdb: %s" % e)
    return out


class DaemonFailure(AssertionError):
    pass


# Daemons alive right now, so that a test watchdog can kill them all (which aborts every
# syscall blocked on their mounts with ENOTCONN instead of hanging the test run).
LIVE = set()


def kill_all_live():
    for proc in list(LIVE):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def source_root():
    return os.environ.get("PRSMFS_SOURCE_ROOT",
                          os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def prsmfs_binary():
    path = os.environ.get("PRSMFS_BIN")
    if path:
        return path
    for build in ("build-asan", "build"):
        cand = os.path.join(source_root(), build, "src", "daemon", "prsmfs")
        if os.path.exists(cand):
            return cand
    raise RuntimeError("prsmfs binary not found: build it or set PRSMFS_BIN")


def tool_binary(name):
    """A binary built from tools/ (prsmctl, ...), next to the daemon's build."""
    build = os.environ.get("PRSMFS_BUILD_ROOT")
    if not build:
        build = os.path.dirname(os.path.dirname(os.path.dirname(prsmfs_binary())))
    return os.path.join(build, "tools", name, name)


def build_binary(relpath):
    """A binary of the build tree, e.g. build_binary("tests/support/dagtool")."""
    build = os.environ.get("PRSMFS_BUILD_ROOT")
    if not build:
        build = os.path.dirname(os.path.dirname(os.path.dirname(prsmfs_binary())))
    return os.path.join(build, relpath)


def mount_ids(path):
    """IDs of the mounts stacked on path (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    ids = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].replace("\\040", " ") == path:
                ids.add(fields[0])
    return ids


def is_mounted(path):
    return bool(mount_ids(path))


def force_unmount(path):
    """Detach a (possibly stale) mount; never raises."""
    for cmd in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
        if not is_mounted(path):
            return
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


def fsync_path(path):
    """fsync of a file by name: returns once its upload is pinned."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Mount:
    def __init__(self, workdir, config=None, options=(), name="m", allow_stderr=()):
        self.workdir = workdir
        self.mountpoint = os.path.join(workdir, name)
        self.state_dir = os.path.join(workdir, name + ".state")
        self.cache_dir = os.path.join(workdir, name + ".cache")
        self.config_path = os.path.join(workdir, name + ".json")
        self.log_path = os.path.join(workdir, name + ".log")
        self.options = list(options)
        self.allow_stderr = tuple(allow_stderr)
        self.proc = None
        # no metrics endpoint unless a test asks for one: mounts of parallel tests would
        # contend for the default port (and each log a warning)
        cfg = {"state_dir": self.state_dir, "cache_dir": self.cache_dir, "metrics_listen": "off"}
        cfg.update(config or {})
        self.config = cfg
        try:
            os.makedirs(self.mountpoint, exist_ok=True)
        except FileExistsError:
            pass  # a stale mount of a killed daemon: prsmfs itself detaches it

    def command(self):
        cmd = [prsmfs_binary(), "-f", "--config=" + self.config_path]
        for opt in self.options:
            cmd += ["-o", opt]
        cmd.append(self.mountpoint)
        return cmd

    def start(self, timeout=20):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        LIVE.add(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._cleanup()
                raise DaemonFailure("prsmfs exited with %s before mounting:\n%s"
                                    % (self.proc.returncode, self.stderr()))
            if self.answering():
                return self
            time.sleep(0.05)
        self._cleanup()
        raise DaemonFailure("prsmfs did not mount within %.0f s:\n%s" % (timeout, self.stderr()))

    def answering(self):
        """True once a live daemon answers on the mount point (a stale mount of a killed
        daemon gives ENOTCONN; mount IDs are reused, so mountinfo alone cannot tell)."""
        if not is_mounted(self.mountpoint):
            return False
        try:
            st = os.stat(self.mountpoint)
            parent = os.stat(os.path.dirname(self.mountpoint))
        except OSError:
            return False
        return st.st_dev != parent.st_dev

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def instance_id(self):
        """Its index's instance id (table meta, schema 5), which names its staging directory."""
        db = sqlite3.connect(os.path.join(self.config["state_dir"], "index.sqlite"))
        try:
            return db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0]
        finally:
            db.close()

    def staging_dir(self):
        """cache_dir/staging/<instance id>: this daemon's staging files, its own also when
        other mounts share the cache_dir."""
        return os.path.join(self.config["cache_dir"], "staging", self.instance_id())

    def _cleanup(self):
        """Kill the daemon by PID and detach the mount; never raises."""
        LIVE.discard(self.proc)
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        force_unmount(self.mountpoint)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def kill(self, sig=signal.SIGKILL):
        """Kill the daemon (crash tests); the stale mount is detached by stop()/restart."""
        os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=10)

    def check_stderr(self):
        text = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in text and not any(a in text for a in self.allow_stderr):
                raise DaemonFailure("sanitizer report in prsmfs stderr:\n" + text)

    def _flush_stale_interrupts(self):
        """Two lookups of names that do not exist (requests the kernel cannot answer from its
        cache). libfuse keeps an INTERRUPT that came after its request was answered (a
        process killed in a blocked fsync, at the wrong moment) until the next request, and
        frees none at exit: LeakSanitizer then reports 128 bytes lost in libfuse3 (seen once,
        test_64_reads_of_unreachable_blocks_and_8_fsyncs__stat_and_ls_answer, 2026-12-05).
        A request the daemon never answered still leaks, and still fails the test."""
        for _ in range(2):
            try:
                os.lstat(os.path.join(self.mountpoint, ".prsmfs-flush-%d" % time.monotonic_ns()))
            except OSError:
                pass

    def stop(self, timeout=20, expect_crash=False):
        """Unmount and wait for a clean exit. Raises DaemonFailure on a crash, a hang or a
        sanitizer report (unless expect_crash)."""
        if self.proc is None:
            return
        failure = None
        try:
            if self.proc.poll() not in (None, 0) and not expect_crash:
                failure = "prsmfs died during the test (exit status %s)" % self.proc.returncode
            if self.proc.poll() is None:
                self._flush_stale_interrupts()
                u = subprocess.run(["fusermount3", "-u", self.mountpoint], timeout=timeout,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    # a busy mount (a descriptor still open) is the caller's, not a hang
                    failure = ("unmount failed (%s): prsmfs still serving" % u.stderr.strip()
                               if u.returncode else
                               "prsmfs (pid %d) did not exit within %d s of unmount; threads:\n%s"
                               % (self.proc.pid, timeout, "\n".join(daemon_stacks(self.proc.pid))))
            if failure is None and self.proc.returncode != 0 and not expect_crash:
                failure = "prsmfs exited with status %s" % self.proc.returncode
        finally:
            self._cleanup()
        if failure:
            raise DaemonFailure(failure + ":\n" + self.stderr())
        self.check_stderr()
        self.proc = None

    def restart(self, timeout=20):
        if self.proc is not None:
            self.stop(expect_crash=not self.alive())
        return self.start(timeout)
