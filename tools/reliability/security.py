# SPDX-License-Identifier: GPL-2.0-or-later
"""Security campaign: tries each hostile input of issue 21 against real mounts and reports a
table "hostile input tried -> outcome", each row passed or failed.

- The mount: private by default (no allow_other in its mount options, another user gets
  EACCES on the mount point), default_permissions always.
- An unprivileged user (uid/gid 65534, through setpriv) on a mount with allow_other: cannot
  set trusted.* or security.* xattrs, chown, read another user's 0600 file, or connect to the
  control socket (so cannot link, publish or pin through it).
- Credential files: an RPC node's auth_file that is group/world readable, or owned by another
  user, is refused at start with a clear error.
- TLS: an https node whose certificate no configured CA signed is not used (reads fail, the
  log names the certificate); with the CA in ca_bundle it is.
- Hostile DAGs, built here as raw blocks and served by a gateway (tests/support/faultgw.py)
  with no node behind it: names '..', '.', with '/', NUL or newline, 300-byte names,
  duplicate names, lying filesize and blocksizes, a bogus HAMT fanout, a 10,000-deep chain of
  directories, a directory of 20,000 links, a file of 20,000 links, symlinks to /etc/passwd
  and ../../.., and setuid/setgid/sticky modes (UnixFS 1.5). Each must give a clear error or
  skipped entries, in bounded time (and daemon RSS), and never a byte that is not verified
  content."""
import errno
import json
import os
import stat as st_
import subprocess
import time

import dagpb
from blocksrv import raw_cid

NOBODY = 65534
PROBE = r"""
import errno, json, os, socket, sys
out = []
for op in json.loads(sys.argv[1]):
    kind, path = op[0], op[1]
    try:
        if kind == "stat":
            os.stat(path)
        elif kind == "read":
            with open(path, "rb") as f:
                f.read(1)
        elif kind == "setxattr":
            os.setxattr(path, op[2], b"x")
        elif kind == "chown":
            os.chown(path, op[2], op[3])
        elif kind == "chmod":
            os.chmod(path, op[2])
        elif kind == "create":
            with open(path, "wb") as f:
                f.write(b"mine")
        elif kind == "connect":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.close()
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
print(json.dumps(out))
"""


def as_nobody(ops):
    """Runs ops (lists) as uid/gid 65534 with no supplementary groups; returns per op "ok" or
    the errno's name."""
    p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                        "--clear-groups", "/usr/bin/python3", "-c", PROBE, json.dumps(ops)],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("probe as nobody failed: %s" % p.stderr[-2000:])
    return json.loads(p.stdout)


def mount_options(path):
    """(mount options, super options) of the mount at path, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[4] == path:
                sep = parts.index("-")
                return parts[5].split(","), parts[sep + 3].split(",")
    return None, None


# -- hostile blocks ---------------------------------------------------------------------------
F = dagpb.field


def unixfs(typ, data=None, filesize=None, blocksizes=(), fanout=None, hash_type=None,
           mode=None):
    out = F(1, 0, typ)
    if data is not None:
        out += F(2, 2, data)
    if filesize is not None:
        out += F(3, 0, filesize)
    for b in blocksizes:
        out += F(4, 0, b)
    if hash_type is not None:
        out += F(5, 0, hash_type)
    if fanout is not None:
        out += F(6, 0, fanout)
    if mode is not None:
        out += F(7, 0, mode)
    return out


def pbnode(links, data):
    """links: (name bytes or None, CID string, tsize)."""
    out = b""
    for name, cid, tsize in links:
        ln = F(1, 2, dagpb.cid_bytes(cid))
        if name is not None:
            ln += F(2, 2, name)
        ln += F(3, 0, tsize)
        out += F(2, 2, ln)
    return out + F(1, 2, data)


class Blocks:
    def __init__(self):
        self.blocks = {}

    def raw(self, data):
        cid = raw_cid(data)
        self.blocks[cid] = data
        return cid

    def pb(self, links, data):
        block = pbnode(links, data)
        cid = dagpb.cid_v0(block)
        self.blocks[cid] = block
        return cid

    def dir(self, entries, mode=None):
        return self.pb(entries, unixfs(1, mode=mode))


def hostile_dags(b):
    """{name: (root CID, what it is)} of hostile DAGs; every block goes into b."""
    leaf = b.raw(b"ok\n")
    good = b.pb([], unixfs(2, b"good\n", filesize=5))
    out = {}
    names = [b"..", b".", b"a/b", b"nul\0name", b"new\nline", b"x" * 300, b"", b"dup",
             b"dup", b"fine"]
    out["names"] = (b.dir([(n, leaf, 3) for n in names]),
                    "directory with entries '..', '.', 'a/b', 'nul\\0name', 'new\\nline', a "
                    "300-byte name, '' and 'dup' twice, besides 'fine'")
    l1, l2 = b.raw(b"A" * 1000), b.raw(b"B" * 1000)
    out["filesize_big"] = (b.pb([(b"", l1, 1000), (b"", l2, 1000)],
                                unixfs(2, filesize=1 << 40, blocksizes=(1000, 1000))),
                           "file claiming 1 TiB (filesize) over two 1000-byte leaves")
    out["filesize_small"] = (b.pb([(b"", l1, 1000), (b"", l2, 1000)],
                                  unixfs(2, filesize=10, blocksizes=(1000, 1000))),
                             "file claiming 10 bytes over two 1000-byte leaves")
    out["blocksizes"] = (b.pb([(b"", l1, 1000), (b"", l2, 1000)],
                              unixfs(2, filesize=2000, blocksizes=(1500, 500))),
                         "file whose blocksizes (1500, 500) lie about its 1000-byte leaves")
    out["blocksizes_count"] = (b.pb([(b"", l1, 1000), (b"", l2, 1000)],
                                    unixfs(2, filesize=2000, blocksizes=(1000,))),
                               "file with 2 links and 1 blocksize")
    out["hamt_fanout"] = (b.pb([(b"00fine", leaf, 3)], unixfs(5, fanout=3, hash_type=0x22)),
                          "HAMT shard with fanout 3 (not a power of two)")
    out["hamt_fanout_huge"] = (b.pb([(b"00fine", leaf, 3)],
                                    unixfs(5, fanout=1 << 40, hash_type=0x22)),
                               "HAMT shard with fanout 2^40")
    cur = b.dir([(b"end", good, 5)])
    for _ in range(10000):
        cur = b.dir([(b"d", cur, 100)])
    out["deep"] = (cur, "10,000-deep chain of directories (d/d/d/...)")
    out["wide_dir"] = (b.dir([(b"e%05d" % i, leaf, 3) for i in range(20000)]),
                       "flat directory of 20,000 links")
    out["wide_file"] = (b.pb([(b"", l1, 1000)] * 20000,
                             unixfs(2, filesize=20000 * 1000, blocksizes=(1000,) * 20000)),
                        "file of 20,000 links to one leaf (20 MB)")
    out["symlinks"] = (b.dir([(b"passwd", b.pb([], unixfs(4, b"/etc/passwd")), 20),
                              (b"up", b.pb([], unixfs(4, b"../../..")), 20)]),
                       "symlinks to /etc/passwd and ../../..")
    out["setuid"] = (b.dir([(b"suid", b.pb([], unixfs(2, b"#!/bin/sh\n", filesize=10,
                                                      mode=0o4755)), 20),
                            (b"sgid", b.pb([], unixfs(2, b"x", filesize=1, mode=0o2755)), 20),
                            (b"sticky", b.pb([], unixfs(1, mode=0o1777)), 20)], mode=0o6755),
                       "files with modes 04755 and 02755, a directory 01777, the parent 06755")
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(workdir, node, make_mount, prsmctl, log):
    rows = []

    def row(tried, outcome, ok):
        rows.append({"tried": tried, "outcome": outcome, "passed": bool(ok)})
        log("security: %s %s -> %s" % ("ok  " if ok else "FAIL", tried, outcome))

    def attempt(tried, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a check that could not run is a failure
            row(tried, "check could not run: %r" % (e,), False)

    # the work directory must be traversable by the unprivileged user
    d = workdir
    while d not in ("/", ""):
        st = os.stat(d)
        if not st.st_mode & 0o001:
            os.chmod(d, (st.st_mode & 0o7777) | 0o011)
        d = os.path.dirname(d)

    # -- private mount, default_permissions ----------------------------------------------
    cfg = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 20}
    m = make_mount(cfg, (), "private")
    try:
        def private():
            mo, so = mount_options(m.mountpoint)
            row("mount without options: its options", "mount %s; super %s" % (
                ",".join(mo), ",".join(so)),
                "allow_other" not in so and "default_permissions" in so)
            os.chmod(m.mountpoint, 0o777)
            got = as_nobody([["stat", m.mountpoint + "/."], ["create", m.path("x")]])
            row("another user (uid 65534) stats and creates in a private mount (root 0777)",
                "/".join(got), got == ["EACCES", "EACCES"])
        attempt("private mount", private)
    finally:
        m.stop()

    m = make_mount(cfg, ("allow_other",), "shared")
    try:
        def shared():
            mo, so = mount_options(m.mountpoint)
            row("mount with -o allow_other: its options", "super %s" % ",".join(so),
                "allow_other" in so and "default_permissions" in so)
            os.chmod(m.mountpoint, 0o777)
            secret = m.path("secret")
            with open(secret, "wb") as f:
                f.write(b"root's secret")
            os.chmod(secret, 0o600)
            mine = m.path("mine")
            got = as_nobody([["create", mine], ["setxattr", mine, "trusted.x"],
                             ["setxattr", mine, "security.x"], ["setxattr", mine, "user.ok"],
                             ["chown", mine, 0, 0], ["chown", secret, NOBODY, NOBODY],
                             ["read", secret], ["chmod", secret, 0o644],
                             ["setxattr", secret, "user.x"],
                             ["connect", os.path.join(m.state_dir, "control.sock")]])
            names = ["create own file", "setxattr trusted.x on it", "setxattr security.x on it",
                     "setxattr user.ok on it (allowed)", "chown own file to root",
                     "chown root's file", "read root's 0600 file", "chmod root's file",
                     "setxattr on root's file", "connect to the control socket"]
            want = ["ok", ("EPERM",), ("EPERM", "EACCES", "EOPNOTSUPP"), "ok", ("EPERM",),
                    ("EPERM",), ("EACCES",), ("EPERM",), ("EACCES", "EPERM"),
                    ("EACCES", "ENOENT")]
            for n, g, w in zip(names, got, want):
                row("uid 65534 on an allow_other mount: " + n, g,
                    g == w if isinstance(w, str) else g in w)
            st = os.stat(os.path.join(m.state_dir, "control.sock"))
            row("the control socket's mode and owner", "%o uid %d" % (st.st_mode & 0o777,
                                                                       st.st_uid),
                st.st_mode & 0o077 == 0 and st.st_uid == 0)
            probe = subprocess.run(
                ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                 prsmctl, "link", raw_cid(b"x"), m.path("linked")],
                capture_output=True, text=True, timeout=60)
            row("uid 65534 runs prsmctl link", "exit %d: %s" % (probe.returncode,
                                                               probe.stderr.strip()[:160]),
                probe.returncode != 0 and not os.path.lexists(m.path("linked")))
        attempt("allow_other mount", shared)
    finally:
        m.stop()

    # -- credential files ---------------------------------------------------------------
    def creds():
        for what, mode, owner in (("mode 0644", 0o644, 0), ("mode 0640", 0o640, 0),
                                  ("owned by uid 65534 (mode 0600)", 0o600, NOBODY)):
            tag = "%o-%d" % (mode, owner)
            tok = os.path.join(workdir, "token-" + tag)
            with open(tok, "w") as f:
                f.write("bearer:s3cret\n")
            os.chmod(tok, mode)
            os.chown(tok, owner, owner)
            c = {"rpc_nodes": [{"url": node.api_url, "auth_file": tok}], "gateway_nodes": []}
            try:
                mm = make_mount(c, (), "cred-" + tag)
            except Exception as e:  # noqa: BLE001 - refused to start: what is checked
                msg = str(e)
                line = next((ln for ln in msg.splitlines() if "token-" + tag in ln), msg[:200])
                row("an RPC node's auth_file " + what, "refused: " + line.strip()[:200],
                    "token-" + tag in msg)
                continue
            mm.stop()
            row("an RPC node's auth_file " + what, "ACCEPTED", False)
    attempt("credential files", creds)

    # -- TLS ----------------------------------------------------------------------------
    def tls():
        from blocksrv import BlockServer
        key, cert = os.path.join(workdir, "tls.key"), os.path.join(workdir, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        data = b"served over TLS\n"
        srv = BlockServer(blocks={raw_cid(data): data}, tls=(cert, key)).start()
        try:
            for with_ca in (False, True):
                c = {"rpc_nodes": [srv.url], "gateway_nodes": [], "timeout": 5}
                if with_ca:
                    c["ca_bundle"] = cert
                mm = make_mount(c, (), "tls%d" % with_ca)
                try:
                    p = prsmctl_run(prsmctl, "link", raw_cid(data), mm.path("f"))
                    try:
                        with open(mm.path("f"), "rb") as f:
                            got = f.read()
                        outcome = "read %r" % got[:20]
                    except OSError as e:
                        got, outcome = None, "read: %s" % errno.errorcode.get(e.errno)
                    if p.returncode != 0:
                        got, outcome = None, "link refused: %s" % p.stderr.strip()[:120]
                    cert_logged = "certificate" in mm.stderr().lower()
                finally:
                    mm.stop()
                if with_ca:
                    row("https node, its CA in ca_bundle", outcome, got == data)
                else:
                    row("https node with a self-signed certificate, no ca_bundle",
                        outcome + ("; log names the certificate" if cert_logged else ""),
                        got is None and cert_logged)
        finally:
            srv.stop()
    attempt("TLS", tls)

    # -- hostile DAGs -------------------------------------------------------------------
    from faultgw import FaultGateway
    b = Blocks()
    dags = hostile_dags(b)
    gw = FaultGateway(blocks=b.blocks, keep_order=False).start()
    dead = "http://127.0.0.1:9"
    c = {"rpc_nodes": [dead], "gateway_nodes": [gw.url], "timeout": 10,
         "content_cache_enabled": True}
    m = make_mount(c, (), "hostile")
    try:
        pid = m.proc.pid
        rss0 = rss_kib(pid)
        for name, (cid, what) in dags.items():
            t0 = time.monotonic()
            p = prsmctl_run(prsmctl, "link", cid, m.path(name))
            linked = p.returncode == 0
            try:
                outcome, ok = CHECKS[name](m.path(name), linked, p)
            except Exception as e:  # noqa: BLE001 - reported as the outcome
                outcome, ok = "check raised %r" % (e,), False
            took = time.monotonic() - t0
            # bounded time: a minute, or linear in the DAG's size (the deep chain: its check)
            if took > 60 and name != "deep":
                ok = False
            if not m.alive():
                outcome, ok = outcome + "; THE DAEMON DIED", False
            rss = rss_kib(pid) if m.alive() else 0
            row(what, "%s (%.1f s; daemon RSS %d MiB)" % (outcome, took, rss >> 10), ok)
            if not m.alive():
                m.restart()
                pid = m.proc.pid
        rss1 = rss_kib(pid)
        row("daemon RSS over all hostile DAGs", "%d -> %d MiB" % (rss0 >> 10, rss1 >> 10),
            rss1 - rss0 < 512 * 1024)
    finally:
        gw.stop()
        m.stop()
    return {"rows": rows, "tried": len(rows), "failed": sum(1 for r in rows if not r["passed"]),
            "failures": [r["tried"] + " -> " + r["outcome"] for r in rows if not r["passed"]]}


def prsmctl_run(prsmctl, *args):
    return subprocess.run([prsmctl] + list(args), capture_output=True, text=True, timeout=300)


def read_all(path):
    try:
        with open(path, "rb") as f:
            return f.read(), None
    except OSError as e:
        return None, errno.errorcode.get(e.errno, str(e.errno))


def verified_only(got, leaves):
    """got holds only bytes of the verified leaves, in order (a prefix of their
    concatenation)."""
    return got is not None and leaves.startswith(got)


def check_names(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], True
    names = sorted(os.listdir(path))
    ok = set(names) <= {"dup", "fine", "new\nline"} and "fine" in names
    return "listed %r" % names, ok


def check_file(leaves):
    def check(path, linked, p):
        if not linked:
            return "link refused: " + p.stderr.strip()[:120], True
        try:
            size = os.stat(path).st_size
        except OSError as e:
            return "stat: %s" % errno.errorcode.get(e.errno), True
        got, err = read_all(path)
        if err:
            return "size %d; read: %s" % (size, err), True
        return ("size %d; read %d bytes, %s" % (size, len(got), "all verified content"
                                                if verified_only(got, leaves)
                                                else "NOT VERIFIED CONTENT"),
                verified_only(got, leaves))
    return check


def check_listing_error(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], True
    try:
        names = os.listdir(path)
    except OSError as e:
        return "listing: %s" % errno.errorcode.get(e.errno), True
    return "listed %r" % names[:5], names == []


def check_deep(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], True
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    laps = []  # seconds per 1000 levels: linear time, not worse
    t = time.monotonic()
    try:
        while True:
            try:
                nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except OSError as e:
                if e.errno == errno.ENOENT and os.listdir(fd) == ["end"]:
                    with open(os.open("end", os.O_RDONLY, dir_fd=fd), "rb") as f:
                        got = f.read()
                    first, last = laps[0], max(laps[-3:])
                    return ("walked %d levels, end file %r; seconds per 1000 levels: first "
                            "%.1f, last %.1f" % (depth, got, first, laps[-1]),
                            got == b"good\n" and last <= 3 * first + 1)
                return "stopped at depth %d: %s" % (depth, errno.errorcode.get(e.errno)), True
            os.close(fd)
            fd = nfd
            depth += 1
            if depth % 1000 == 0:
                laps.append(time.monotonic() - t)
                t = time.monotonic()
    finally:
        os.close(fd)


def check_wide_dir(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], True
    try:
        n = len(os.listdir(path))
    except OSError as e:
        return "listing: %s" % errno.errorcode.get(e.errno), True
    return "listed %d entries" % n, n in (0, 20000)


def check_symlinks(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], True
    out = []
    ok = True
    for name, target in (("passwd", "/etc/passwd"), ("up", "../../..")):
        q = os.path.join(path, name)
        try:
            st = os.lstat(q)
        except OSError as e:
            out.append("%s: %s" % (name, errno.errorcode.get(e.errno)))
            continue
        if st_.S_ISLNK(st.st_mode):
            t = os.readlink(q)
            out.append("%s -> %s (a symlink, not followed by prsmfs)" % (name, t))
            ok = ok and t == target
        else:
            out.append("%s: NOT A SYMLINK (mode %o)" % (name, st.st_mode))
            ok = False
    return "; ".join(out), ok


def check_setuid(path, linked, p):
    if not linked:
        return "link refused: " + p.stderr.strip()[:120], False
    modes = {n: os.stat(os.path.join(path, n)).st_mode & 0o7777
             for n in ("suid", "sgid", "sticky")}
    modes["."] = os.stat(path).st_mode & 0o7777
    ok = all(v & 0o7000 == 0 for v in modes.values())
    return "modes %s" % {k: oct(v) for k, v in modes.items()}, ok


CHECKS = {
    "names": check_names,
    "filesize_big": check_file(b"A" * 1000 + b"B" * 1000),
    "filesize_small": check_file(b"A" * 1000 + b"B" * 1000),
    "blocksizes": check_file(b"A" * 1000 + b"B" * 1000),
    "blocksizes_count": check_file(b"A" * 1000 + b"B" * 1000),
    "hamt_fanout": check_listing_error,
    "hamt_fanout_huge": check_listing_error,
    "deep": check_deep,
    "wide_dir": check_wide_dir,
    "wide_file": check_file(b"A" * 1000 * 20000),
    "symlinks": check_symlinks,
    "setuid": check_setuid,
}
