# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package (issue 18): packaging/build-deb.sh builds prsmfs_*.deb from this tree
(a release build without tests: DEB_BUILD_OPTIONS=nocheck), its files are where they belong,
it installs with `dpkg --root` into a throwaway root whose dpkg database is a copy of the
host's (so its Depends resolve against the packages really installed here, without
--force-depends, and nothing is installed on the machine itself), and the installed prsmfs,
run as the installed unit's ExecStart runs it, with the shipped example config pointed at a
real js-ipfs node, mounts, reads and writes, uploads, and unmounts cleanly.

When the package ships the mount helper (`meson install` installs /sbin/mount.fuse.prsmfs
with the ctl branch), `mount -t fuse.prsmfs` with the packaged fstab example's options mounts
through it, nosuid,nodev, in a private mount namespace; without it that test is skipped and
says so."""
import glob
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import urllib.request

import pytest
from ipfsnode import free_ports
from mount import Mount, fsync_path, source_root

MiB = 1 << 20


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The .deb built from this tree (one build for the module)."""
    out = str(tmp_path_factory.mktemp("deb"))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    p = subprocess.run([os.path.join(source_root(), "packaging", "build-deb.sh"), out],
                       capture_output=True, text=True, timeout=1500, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    debs = glob.glob(os.path.join(out, "prsmfs_*.deb"))
    assert len(debs) == 1 and p.stdout.split() == debs, (debs, p.stdout)
    return debs[0]


@pytest.fixture
def pkgroot():
    """A throwaway root with a copy of the host's dpkg database (status and file lists, no
    triggers: no host package's trigger runs for it); removed in every outcome. Short path:
    the mount's state_dir/control.sock must fit a unix socket's 108 bytes."""
    root = tempfile.mkdtemp(prefix="pkg-", dir="/tmp")
    try:
        admin = os.path.join(root, "var", "lib", "dpkg")
        for d in ("info", "updates", "triggers"):
            os.makedirs(os.path.join(admin, d))
        shutil.copy("/var/lib/dpkg/status", admin)
        for f in glob.glob("/var/lib/dpkg/info/*.list"):
            shutil.copy(f, os.path.join(admin, "info"))
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def deb_files(deb):
    """Paths in the package (dpkg -c), without the leading '.'."""
    p = subprocess.run(["dpkg", "-c", deb], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return {ln.split()[5][1:].rstrip("/") for ln in p.stdout.splitlines()}


def field(deb, name):
    p = subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def unit_files(files):
    hits = [f for f in files if f.endswith("/systemd/system/prsmfs@.service")]
    assert len(hits) == 1, sorted(files)
    return hits[0]


def test_deb__files_depends_and_unit(deb):
    files = deb_files(deb)
    for want in ("/usr/bin/prsmfs", "/usr/bin/prsmctl", "/usr/share/doc/prsmfs/copyright",
                 "/usr/share/doc/prsmfs/examples/config.json",
                 "/usr/share/doc/prsmfs/examples/fstab",
                 "/usr/share/doc/prsmfs/examples/prsmfs-alerts.yml",
                 "/usr/share/doc/prsmfs/examples/grafana-dashboard.json"):
        assert want in files, (want, sorted(files))
    assert any(f.startswith("/usr/share/doc/prsmfs/operations.md") for f in files), files
    assert not any("/usr/local" in f or "/tests/" in f for f in files), sorted(files)
    unit = unit_files(files)
    deps = [d.strip().split()[0] for d in field(deb, "Depends").split(",")]
    # fuse3 by hand, the libraries from ${shlibs:Depends}
    for want in ("fuse3", "libfuse3-3", "libcurl4", "libsqlite3-0", "libjansson4",
                 "libmicrohttpd12", "libsystemd0", "libssl3"):
        assert want in deps, (want, deps)
    assert field(deb, "Package") == "prsmfs" and field(deb, "Architecture") == "amd64"
    # no maintainer scripts: the template unit has nothing to enable at install
    p = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True, timeout=60)
    assert "postinst" not in p.stdout and "preinst" not in p.stdout, p.stdout
    # the packaged unit starts the packaged binary
    p = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, timeout=60)
    assert p.returncode == 0
    q = subprocess.run(["tar", "-xO", "." + unit], input=p.stdout, capture_output=True,
                       timeout=60)
    text = q.stdout.decode()
    assert "ExecStart=/usr/bin/prsmfs " in text and "/usr/local" not in text, text


def exec_start(root, files):
    """The installed unit's ExecStart as an argv, for instance mnt-prsm."""
    with open(root + unit_files(files)) as f:
        lines = [ln.strip() for ln in f if ln.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0][len("ExecStart="):].replace("%i", "mnt-prsm")
                       .replace("%I", "mnt/prsm"))


class InstalledMount(Mount):
    """A Mount run with the command line of the installed unit, its paths moved under the
    throwaway root (the binary, the config file, the mount point)."""

    def __init__(self, workdir, argv, root, **kw):
        super().__init__(workdir, **kw)
        self.argv, self.root = argv, root

    def command(self):
        out = []
        for a in self.argv:
            if a.startswith("/usr/bin/"):
                a = self.root + a
            elif a.startswith("--config="):
                a = "--config=" + self.config_path
            elif a == "/mnt/prsm":
                a = self.mountpoint
            out.append(a)
        return out


def test_deb__installed_into_root__mounts_reads_writes_with_shipped_config(deb, pkgroot,
                                                                         ipfs_node):
    p = subprocess.run(["dpkg", "--root=" + pkgroot, "-i", deb], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    q = subprocess.run(["dpkg", "--root=" + pkgroot, "-s", "prsmfs"], capture_output=True,
                       text=True, timeout=60)
    assert "Status: install ok installed" in q.stdout, q.stdout + q.stderr
    files = deb_files(deb)
    listed = subprocess.run(["dpkg", "--root=" + pkgroot, "-L", "prsmfs"],
                            capture_output=True, text=True, timeout=60).stdout.split()
    assert set(listed) >= files - {"", "/"}
    for f in files:
        assert os.path.lexists(pkgroot + f), f
    prsmfs = pkgroot + "/usr/bin/prsmfs"
    v = subprocess.run([prsmfs, "--version"], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and "0." in v.stdout + v.stderr, v.stdout + v.stderr
    # the shipped example config as the unit's instance mnt-prsm would use it: its
    # directories (StateDirectory/CacheDirectory) under the root, its node the test's
    with open(pkgroot + "/usr/share/doc/prsmfs/examples/config.json") as f:
        cfg = json.load(f)
    assert cfg["state_dir"] == "/var/lib/prsmfs/mnt-prsm", cfg
    assert cfg["cache_dir"] == "/var/cache/prsmfs", cfg
    for key in ("state_dir", "cache_dir"):
        cfg[key] = pkgroot + cfg[key]
        os.makedirs(cfg[key], exist_ok=True)
    cfg["rpc_nodes"], cfg["gateway_nodes"] = [ipfs_node.api_url], []
    port = free_ports(1)[0]
    cfg["metrics_listen"] = "127.0.0.1:%d" % port
    argv = exec_start(pkgroot, files)
    assert argv[0] == "/usr/bin/prsmfs" and "-f" in argv, argv
    m = InstalledMount(pkgroot, argv, pkgroot, config=cfg, name="mnt-prsm")
    try:
        m.start()
        assert m.command()[0] == prsmfs
        # content already on the node, linked in with the installed prsmctl
        seed = os.urandom(MiB + 77)
        cid = ipfs_node.add(seed, cid_version=1, raw_leaves=True, cid_base="base32")
        ctl = subprocess.run([pkgroot + "/usr/bin/prsmctl", "link", cid, m.path("seed")],
                             capture_output=True, text=True, timeout=60)
        assert ctl.returncode == 0, ctl.stdout + ctl.stderr
        with open(m.path("seed"), "rb") as f:
            assert f.read() == seed
        data = os.urandom(2 * MiB + 5)
        with open(m.path("written"), "wb") as f:
            f.write(data)
        fsync_path(m.path("written"))  # uploaded and pinned
        wcid = os.getxattr(m.path("written"), "user.prsm.cid").decode()
        assert ipfs_node.rpc("cat", [("arg", wcid)], timeout=120) == data
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10) as r:
            health = json.load(r)
            assert r.status == 200 and health["status"] == "healthy", health
            assert health["nodes"]["total"] == 1, health
        m.stop()
        assert not os.path.ismount(m.mountpoint)
        m.start()  # its index under the root's StateDirectory kept both files
        with open(m.path("written"), "rb") as f:
            assert f.read() == data
        with open(m.path("seed"), "rb") as f:
            assert f.read() == seed
    finally:
        m.stop()


# docker-compose and Kubernetes: no Docker daemon, compose plugin, registry or cluster here,
# so these check the files' structure and that they agree with each other and with the
# package (PyYAML, from Debian's python3-yaml).

def packaging_file(*parts):
    return os.path.join(source_root(), "packaging", *parts)


def config_keys_known(cfg):
    """Every key is one src/config/config.c names (prsmfs rejects unknown keys)."""
    with open(os.path.join(source_root(), "src", "config", "config.c")) as f:
        src = f.read()
    unknown = [k for k in cfg if '"%s"' % k not in src]
    assert not unknown, unknown


def dockerfile_entrypoint():
    with open(packaging_file("docker", "Dockerfile")) as f:
        text = f.read()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ENTRYPOINT ")]
    return text, json.loads(line[len("ENTRYPOINT "):])


def control_build_depends():
    with open(packaging_file("debian", "control")) as f:
        text = f.read()
    bd = text.split("Build-Depends:", 1)[1].split("\n\n", 1)[0].split("Standards-Version")[0]
    return [d.strip().split()[0] for d in bd.split(",") if d.strip()]


def test_docker__dockerfile_and_compose_structure():
    import yaml

    text, entry = dockerfile_entrypoint()
    froms = [ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM ")]
    assert froms == ["debian:bookworm", "debian:bookworm"], froms
    assert "packaging/build-deb.sh /out" in text and "DEB_BUILD_OPTIONS" in text
    # the build stage installs every Build-Depends of the package (but the debhelper-compat
    # virtual package, which debhelper provides)
    for dep in control_build_depends():
        name = "debhelper" if dep == "debhelper-compat" else dep
        assert " " + name + " " in text.replace("\\\n", " ").replace("\n", " "), name
    assert entry[0] == "/usr/bin/prsmfs" and "-f" in entry, entry
    cfg_path = [a for a in entry if a.startswith("--config=")][0][len("--config="):]

    with open(packaging_file("docker", "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    assert set(services) == {"kubo", "prsmfs"}, services
    assert services["kubo"]["image"].startswith("ipfs/kubo:")
    p = services["prsmfs"]
    build = p["build"]
    ctx = os.path.normpath(os.path.join(packaging_file("docker"), build["context"]))
    assert ctx == os.path.normpath(source_root()), ctx
    assert os.path.exists(os.path.join(ctx, build["dockerfile"]))
    assert p["devices"] == ["/dev/fuse:/dev/fuse"]
    assert p["cap_add"] == ["SYS_ADMIN"]
    assert "apparmor:unconfined" in p["security_opt"]
    assert p["depends_on"]["kubo"]["condition"] == "service_healthy"
    assert "healthcheck" in services["kubo"]
    vols = {v["target"]: v for v in p["volumes"] if isinstance(v, dict)}
    mnt = vols["/mnt/prsm"]
    assert mnt["type"] == "bind" and mnt["bind"]["propagation"] == "rshared", mnt
    assert p["command"] == [mnt["target"]]
    conf = vols[cfg_path]
    assert conf["type"] == "bind" and conf["read_only"] is True
    with open(os.path.join(packaging_file("docker"), conf["source"])) as f:
        cfg = json.load(f)
    config_keys_known(cfg)
    assert cfg["rpc_nodes"] == ["http://kubo:5001"], cfg  # the compose service's name
    named = {v.split(":")[1]: v.split(":")[0] for v in p["volumes"] if isinstance(v, str)}
    assert named.get(cfg["state_dir"].rsplit("/", 1)[0]) in compose["volumes"], named
    assert named.get(cfg["cache_dir"]) in compose["volumes"], named
    # the healthcheck asks /health where the config serves it
    assert "http://%s/health" % cfg["metrics_listen"] in text


def test_kubernetes__daemonset_configmap_structure():
    import yaml

    with open(packaging_file("kubernetes", "prsmfs.yaml")) as f:
        docs = {d["kind"]: d for d in yaml.safe_load_all(f) if d}
    assert set(docs) == {"Namespace", "ConfigMap", "DaemonSet"}, docs.keys()
    ns = docs["Namespace"]["metadata"]["name"]
    ds, cm = docs["DaemonSet"], docs["ConfigMap"]
    assert ds["apiVersion"] == "apps/v1" and ds["metadata"]["namespace"] == ns
    assert cm["metadata"]["namespace"] == ns
    spec = ds["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    (c,) = spec["template"]["spec"]["containers"]
    assert c["securityContext"]["privileged"] is True  # required for Bidirectional
    vols = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert all(m["name"] in vols for m in mounts.values())
    # the FUSE mount propagates to the host; /dev/fuse, cache and state are the host's
    mnt = mounts[c["args"][-1]]
    assert mnt["mountPropagation"] == "Bidirectional"
    assert vols[mnt["name"]]["hostPath"]["path"] == mnt["mountPath"]
    assert vols[mounts["/dev/fuse"]["name"]]["hostPath"] == {"path": "/dev/fuse",
                                                              "type": "CharDevice"}
    # the config: the ConfigMap where the image's ENTRYPOINT reads it
    _, entry = dockerfile_entrypoint()
    cfg_path = [a for a in entry if a.startswith("--config=")][0][len("--config="):]
    cfg_mount = mounts[os.path.dirname(cfg_path)]
    assert vols[cfg_mount["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    cfg = json.loads(cm["data"][os.path.basename(cfg_path)])
    config_keys_known(cfg)
    for key in ("cache_dir", "state_dir"):
        holder = [p for p in mounts if cfg[key] == p or cfg[key].startswith(p + "/")]
        assert holder and "hostPath" in vols[mounts[holder[0]]["name"]], (key, holder)
    # readiness: /health on the port the config serves it on, reachable from the kubelet
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health"
    (port,) = [p for p in c["ports"] if p["name"] == probe["port"]]
    host, _, listen_port = cfg["metrics_listen"].rpartition(":")
    assert host == "0.0.0.0" and int(listen_port) == port["containerPort"], cfg

    with open(packaging_file("kubernetes", "example-consumer.yaml")) as f:
        pod = yaml.safe_load(f)
    (rc,) = pod["spec"]["containers"]
    (vm,) = rc["volumeMounts"]
    assert vm["mountPropagation"] == "HostToContainer"
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == mnt["mountPath"]


HELPER_SCRIPT = r"""
set -u
root=$1 work=$2 opts=$3
cleanup() {
    if [ -f "$work/state/lock" ]; then
        pid=$(cat "$work/state/lock")
        umount "$work/mnt" 2>/dev/null
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { echo "daemon $pid still alive, killed"; kill -9 "$pid"; }
    fi
}
trap cleanup EXIT
# the package's /sbin/mount.fuse.prsmfs and /usr/bin/prsmfs, prsmctl in this namespace only:
# directories of links to the originals and to the installed files, mounted over /usr/sbin
# and /usr/bin
for d in sbin bin; do
    for f in /usr/$d/*; do ln -s "$work/orig-$d/${f##*/}" "$work/new-$d/"; done
done
ln -sf "$root/sbin/mount.fuse.prsmfs" "$work/new-sbin/"
ln -sf "$root/usr/bin/prsmfs" "$root/usr/bin/prsmctl" "$work/new-bin/"
for d in sbin bin; do
    mount --bind "/usr/$d" "$work/orig-$d" || exit 1
done
for d in sbin bin; do
    mount --bind "$work/new-$d" "/usr/$d" || exit 1
done
mount -t fuse.prsmfs prsmfs "$work/mnt" -o "$opts" || { echo "mount failed"; exit 1; }
echo "MOUNTS: $(grep " $work/mnt " /proc/mounts)"
python3 - "$work/mnt/written" "$work/data" <<'PY' || exit 1
import os, sys
data = open(sys.argv[2], "rb").read()
with open(sys.argv[1], "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())  # uploaded and pinned
assert open(sys.argv[1], "rb").read() == data
print("CID: " + os.getxattr(sys.argv[1], "user.prsm.cid").decode())
PY
prsmctl status "$work/mnt" >/dev/null && echo "PRSMCTL: ok"
"""


def test_deb__mount_helper__fstab_line_mounts_nosuid_nodev(deb, pkgroot, ipfs_node):
    """`mount -t fuse.prsmfs` with the options of the packaged fstab example, through the
    packaged helper, in a private mount namespace (nothing is installed on the machine)."""
    if "/sbin/mount.fuse.prsmfs" not in deb_files(deb):
        pytest.skip("no mount helper in the package: `meson install` does not install "
                    "mount.fuse.prsmfs on this branch (it comes with the ctl branch)")
    p = subprocess.run(["dpkg", "--root=" + pkgroot, "-i", deb], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(pkgroot + "/usr/share/doc/prsmfs/examples/config.json") as f:
        cfg = json.load(f)
    work = os.path.join(pkgroot, "w")
    for d in ("orig-sbin", "orig-bin", "new-sbin", "new-bin", "mnt", "state", "cache"):
        os.makedirs(os.path.join(work, d))
    cfg.update(state_dir=work + "/state", cache_dir=work + "/cache",
               rpc_nodes=[ipfs_node.api_url], gateway_nodes=[], metrics_listen="off")
    cfg_path = os.path.join(work, "mnt-prsm.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    data = os.urandom(MiB + 3)
    with open(os.path.join(work, "data"), "wb") as f:
        f.write(data)
    with open(pkgroot + "/usr/share/doc/prsmfs/examples/fstab") as f:
        (line,) = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    assert line[2] == "fuse.prsmfs", line
    opts = line[3].replace("/etc/prsmfs/mnt-prsm.json", cfg_path)
    assert "config=" + cfg_path in opts, opts
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c",
                        HELPER_SCRIPT, "script", pkgroot, work, opts],
                       capture_output=True, text=True, timeout=180)
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        (mounts,) = [ln for ln in p.stdout.splitlines() if ln.startswith("MOUNTS: ")]
        assert " fuse.prsmfs " in mounts, p.stdout
        flags = mounts.split()[4].split(",")
        assert "nosuid" in flags and "nodev" in flags, mounts
        (cid,) = [ln[5:] for ln in p.stdout.splitlines() if ln.startswith("CID: ")]
        assert ipfs_node.rpc("cat", [("arg", cid)], timeout=120) == data
        assert "PRSMCTL: ok" in p.stdout, p.stdout + p.stderr
        assert "still alive" not in p.stdout, p.stdout
    finally:
        # the script's trap unmounted and waited; make sure by PID
        lock = os.path.join(work, "state", "lock")
        if os.path.exists(lock):
            with open(lock) as f:
                pid = f.read().strip()
            if pid.isdigit() and is_prsmfs(int(pid)):
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass


def is_prsmfs(pid):
    """pid is a live prsmfs (not a reused PID of a daemon that exited)."""
    try:
        return os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "prsmfs"
    except OSError:
        return False
