# SPDX-License-Identifier: GPL-2.0-or-later
"""What `meson install` puts in place (issue 18): the binaries, the mount helper where
mount(8) looks for it, the systemd unit and the man pages; and an fstab-style mount
(`mount -t fuse.prsmfs` with the options of packaging/examples/fstab) through the installed
helper, which must come out nosuid,nodev.

The mount runs in a private mount namespace (unshare -m) in which the installed helper is put
in /sbin and the installed bin directory over PREFIX/bin, so that nothing is installed on the
machine itself; the namespace, the mount and the daemon all end with the test."""
import os
import signal
import subprocess

from mount import build_binary, source_root

EXPECTED = ["bin/prsmfs", "bin/prsmctl", "share/man/man8/prsmfs.8",
            "share/man/man8/prsmctl.8"]


def install(destdir):
    p = subprocess.run(["meson", "install", "-C", build_binary(""), "--destdir", destdir,
                        "--no-rebuild", "--quiet"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    found = []
    for root, _, files in os.walk(destdir):
        found += [os.path.relpath(os.path.join(root, f), destdir) for f in files]
    return sorted(found)


def find(files, suffix):
    hits = [f for f in files if f.endswith(suffix)]
    assert len(hits) == 1, (suffix, files)
    return hits[0]


def fstab_options():
    """The options of the shipped fstab line (its fourth field)."""
    with open(os.path.join(source_root(), "packaging", "examples", "fstab")) as f:
        lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1 and lines[0][2] == "fuse.prsmfs", lines
    return lines[0][3]


def test_install__destdir__binaries_helper_unit_and_man_pages(tmp_path):
    dest = str(tmp_path / "dest")
    files = install(dest)
    for want in EXPECTED:
        find(files, want)
    helper = find(files, "sbin/mount.fuse.prsmfs")
    assert helper == "sbin/mount.fuse.prsmfs", helper  # mount(8) looks in /sbin only
    assert os.access(os.path.join(dest, helper), os.X_OK)
    unit = open(os.path.join(dest, find(files, "systemd/system/prsmfs@.service"))).read()
    bindir = "/" + os.path.dirname(find(files, "bin/prsmfs"))
    assert "ExecStart=%s/prsmfs " % bindir in unit and "@BINDIR@" not in unit, unit
    assert "nosuid,nodev" in unit
    assert "PATH=%s:" % bindir in open(os.path.join(dest, helper)).read()
    # the unit as an instance, with the installed binaries where it names them (a private
    # mount namespace again): systemd-analyze verify finds nothing wrong
    inst = str(tmp_path / "prsmfs@mnt-prsm.service")
    with open(inst, "w") as f:
        f.write(unit)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c",
                        'mount --bind "$1$2" "$2" && systemd-analyze verify --man=no "$3"',
                        "verify", dest, bindir, inst], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr


SCRIPT = r"""
set -u
dest=$1 work=$2 bindir=$3 opts=$4
cleanup() {
    if [ -f "$work/state/lock" ]; then
        pid=$(cat "$work/state/lock")
        fusermount3 -u "$work/mnt" 2>/dev/null
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { echo "daemon $pid still alive, killed"; kill -9 "$pid"; }
    fi
}
trap cleanup EXIT
mount --bind /usr/sbin "$work/orig-sbin" || exit 1
mount -t tmpfs tmpfs /usr/sbin || exit 1
for f in "$work"/orig-sbin/*; do ln -s "$f" /usr/sbin/; done
cp "$dest/sbin/mount.fuse.prsmfs" /usr/sbin/ || exit 1
mount --bind "$dest$bindir" "$bindir" || exit 1
mount -t fuse.prsmfs prsmfs "$work/mnt" -o "$opts" || { echo "mount failed"; exit 1; }
echo "MOUNTS: $(grep " $work/mnt " /proc/mounts)"
echo "LS: $(ls -a "$work/mnt" | tr '\n' ' ')"
"$bindir/prsmctl" status "$work/mnt" >/dev/null && echo "PRSMCTL: ok"
"""


def test_install__mount_helper__fstab_options_mount_nosuid_nodev(tmp_path, ipfs_node):
    dest = str(tmp_path / "dest")
    files = install(dest)
    bindir = "/" + os.path.dirname(find(files, "bin/prsmfs"))
    work = str(tmp_path / "w")
    for d in ("orig-sbin", "mnt", "state", "cache"):
        os.makedirs(os.path.join(work, d))
    cfg = os.path.join(work, "mnt-prsm.json")
    with open(cfg, "w") as f:
        f.write('{"rpc_nodes": ["%s"], "gateway_nodes": [], "state_dir": "%s/state", '
                '"cache_dir": "%s/cache"}' % (ipfs_node.api_url, work, work))
    opts = fstab_options().replace("/etc/prsmfs/mnt-prsm.json", cfg)
    assert "config=" + cfg in opts
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", SCRIPT,
                        "script", dest, work, bindir, opts],
                       capture_output=True, text=True, timeout=120)
    pid_file = os.path.join(work, "state", "lock")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        mounts = [ln for ln in p.stdout.splitlines() if ln.startswith("MOUNTS: ")]
        assert mounts and " fuse.prsmfs " in mounts[0], p.stdout
        flags = mounts[0].split()[4].split(",")
        assert "nosuid" in flags and "nodev" in flags, mounts[0]
        assert "PRSMCTL: ok" in p.stdout, p.stdout + p.stderr
        assert "still alive" not in p.stdout, p.stdout
    finally:
        # the script's trap unmounted and waited; make sure by PID
        if os.path.exists(pid_file):
            with open(pid_file) as f:
                pid = f.read().strip()
            if pid.isdigit():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
