# SPDX-License-Identifier: GPL-2.0-or-later
"""`prsmctl publish` on real mounts against real js-ipfs nodes: modes and mtimes kept when
asked (UnixFS 1.5, the CID the node's `add -r` gives with the same fields), brought back by
`prsmctl link` (without setuid, setgid and sticky bits), and private files and directories
left out unless --include-private.

js-ipfs 0.66 differs from Kubo in three ways these tests steer around (Kubo's own vectors
cover them in tests/unit/unixfs): it leaves out a mode of 0644 (files) or 0755 (directories),
so the trees here use other modes; it wraps a single dag-pb leaf whole (its encoded block, not
its bytes) when a file with metadata fits one chunk without raw leaves, so the legacy tree has
no such file; and it drops symlinks sent over HTTP."""
import json
import os
import random
import shutil
import stat
import subprocess

import dagpb
import pytest
from mount import tool_binary

MiB = 1 << 20
K256 = 256 * 1024


def cfg(node, **extra):
    c = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


def prsmctl(*args, check=True, timeout=600):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, "prsmctl %s: %s" % (" ".join(args), p.stderr)
    return p


def node_opts(profile):
    if profile == "default":
        return dict(cid_version=1, raw_leaves=True, chunker="size-1048576", cid_base="base32")
    return dict(cid_version=0, chunker="size-262144", raw_leaves=False)


def attrs(top):
    """{relative path: (kind, mode, mtime_ns, bytes or None)} of a tree, the top included."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
            st = os.lstat(p)
            data = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    data = f.read()
            out[os.path.relpath(p, top)] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777,
                                            st.st_mtime_ns, data)
    return out


# path -> mode of a directory, or (mode, bytes or a size in bytes of random data) of a file
TREES = {
    # one raw leaf, an empty file, exactly one chunk, three chunks
    "default": {"": 0o775, "run.sh": (0o755, b"#!/bin/sh\necho hi\n"), "empty": (0o444, b""),
                "chunk": (0o664, MiB), "three": (0o664, 3 * MiB + 5), "sub": 0o555,
                "sub/tool": (0o775, 300000), "sub/deeper": 0o775,
                "sub/deeper/notes": (0o444, b"notes\n")},
    # every file more than one 256 KiB chunk (see the module's docstring)
    "legacy": {"": 0o775, "run.bin": (0o755, K256 + 1), "big": (0o664, 3 * MiB + 5),
               "sub": 0o555, "sub/tool": (0o775, 2 * K256 + 3)},
}


def make_tree(top, spec, seed):
    """Writes spec under top with those modes and distinct mtimes (some with nanoseconds)."""
    rnd = random.Random(seed)
    os.makedirs(top)
    for name, v in sorted(spec.items()):
        if isinstance(v, int) and name:
            os.makedirs(os.path.join(top, name), exist_ok=True)
    for name, v in sorted(spec.items()):
        if isinstance(v, tuple):
            with open(os.path.join(top, name), "wb") as f:
                f.write(v[1] if isinstance(v[1], bytes) else rnd.randbytes(v[1]))
            os.chmod(os.path.join(top, name), v[0])
    # deepest first: nothing changes a directory after its own time is set
    for i, name in enumerate(sorted(spec, key=lambda n: (-n.count("/"), n == ""))):
        p = os.path.join(top, name)
        if isinstance(spec[name], int):
            os.chmod(p, spec[name])
        t = 1_600_000_000 + 1000 * i
        os.utime(p, ns=(t * 10**9, t * 10**9 + (123456789 if i % 2 else 0)))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("profile", ["default", "legacy"])
def test_publish_preserve_mode_mtime__cid_equals_node_add__link_brings_them_back(
        ipfs_node, mount_factory, tmp_path, profile):
    m = mount_factory(config=cfg(ipfs_node, profile=profile))
    src = str(tmp_path / "pub")
    make_tree(src, TREES[profile], seed=len(profile))
    subprocess.run(["cp", "-a", src, m.path("pub")], check=True)
    want = attrs(src)
    assert attrs(m.path("pub")) == want  # what cp -a made in the mount

    node_root = ipfs_node.add_dir(src, preserve_mode=True, preserve_mtime=True, pin=False,
                                  **node_opts(profile))
    reply = json.loads(prsmctl("--json", "publish", "--preserve-mode", "--preserve-mtime",
                               m.path("pub")).stdout)
    assert reply["cid"] == node_root
    assert reply["skipped"] == [] and reply["skipped_count"] == 0
    # without the options (the default): the node's plain `add -r`, no metadata
    plain = json.loads(prsmctl("--json", "publish", m.path("pub")).stdout)["cid"]
    assert plain == ipfs_node.add_dir(src, pin=False, **node_opts(profile)) != node_root
    # the same options from the config
    m.stop()
    m2 = mount_factory(config=cfg(ipfs_node, profile=profile, publish_preserve_mode=True,
                                  publish_preserve_mtime=True))
    subprocess.run(["cp", "-a", src, m2.path("pub")], check=True)
    assert prsmctl("publish", m2.path("pub")).stdout.splitlines()[0] == node_root
    assert prsmctl("publish", "--no-preserve-mode", "--no-preserve-mtime",
                   m2.path("pub")).stdout.splitlines()[0] == plain

    # linked back: every mode, mtime and byte as published
    prsmctl("link", node_root, m2.path("back"))
    assert attrs(m2.path("back")) == want
    m2.restart()
    assert attrs(m2.path("back")) == want
    # a linked directory never listed ("sub", after a chmod) is listed for the publish
    prsmctl("link", node_root, m2.path("again"))
    os.chmod(m2.path("again", "sub"), 0o777)
    os.chmod(os.path.join(src, "sub"), 0o777)
    assert prsmctl("publish", m2.path("again")).stdout.splitlines()[0] == ipfs_node.add_dir(
        src, preserve_mode=True, preserve_mtime=True, pin=False, **node_opts(profile))


@pytest.mark.timeout(300)
def test_link__setuid_setgid_sticky_from_content__masked_off_mode_and_mtime_kept(
        ipfs_node, mount_factory):
    m = mount_factory(config=cfg(ipfs_node, profile="legacy"))
    body = b"#!/bin/sh\nid\n"
    # UnixFS File leaf with mode 06755 and mtime 1600000000.5, and a 01777 directory of it
    meta = dagpb.field(7, 0, 0o6755) + dagpb.field(8, 2, dagpb.field(1, 0, 1600000000) +
                                                 b"\x15" + (500000000).to_bytes(4, "little"))
    leaf = dagpb.field(1, 2, dagpb.field(1, 0, 2) + dagpb.field(2, 2, body) +
                       dagpb.field(3, 0, len(body)) + meta)
    leaf_cid = dagpb.put(ipfs_node, leaf)
    dir_data = dagpb.field(1, 0, 1) + dagpb.field(7, 0, 0o1777)
    link = dagpb.field(1, 2, dagpb.b58decode(leaf_cid)) + dagpb.field(2, 2, b"suid") + \
        dagpb.field(3, 0, len(leaf))
    dir_cid = dagpb.put(ipfs_node, dagpb.field(2, 2, link) + dagpb.field(1, 2, dir_data))

    prsmctl("link", leaf_cid, m.path("suid"))
    prsmctl("link", dir_cid, m.path("tmpdir"))
    for p in (m.path("suid"), m.path("tmpdir", "suid")):
        st = os.lstat(p)
        assert stat.S_IMODE(st.st_mode) == 0o755, oct(st.st_mode)
        assert st.st_mtime_ns == 1600000000_500000000
        with open(p, "rb") as f:
            assert f.read() == body
    assert stat.S_IMODE(os.lstat(m.path("tmpdir")).st_mode) == 0o777


def ls(node, cid):
    listing = node.rpc_json("ls", [("arg", cid)], timeout=120)
    return {link["Name"]: link["Hash"] for link in listing["Objects"][0]["Links"]}


@pytest.mark.timeout(600)
def test_publish__private_entries__left_out_listed_and_included_on_request(
        ipfs_node, mount_factory, tmp_path):
    m = mount_factory(config=cfg(ipfs_node))
    t = m.path("pub")
    files = {"public.txt": 0o644, "secret.txt": 0o600, "group.txt": 0o640,
             "private/inner.txt": 0o644, "through-only/x": 0o644, "closed/y": 0o644,
             "open/ok.txt": 0o644, "open/key.pem": 0o400}
    dirs = {"private": 0o700, "through-only": 0o711, "closed": 0o750, "open": 0o755}
    for name in dirs:
        os.makedirs(os.path.join(t, name))
    for name, mode in files.items():
        with open(os.path.join(t, name), "wb") as f:
            f.write(name.encode())
        os.chmod(os.path.join(t, name), mode)
    for name, mode in dirs.items():
        os.chmod(os.path.join(t, name), mode)
    os.mkfifo(os.path.join(t, "fifo"), 0o644)
    # the same tree for the node: everything, and only what others may read
    full, public = str(tmp_path / "full"), str(tmp_path / "public")
    shutil.copytree(t, full, ignore=lambda d, names: [n for n in names if n == "fifo"])
    os.makedirs(os.path.join(public, "open"))
    for name in ("public.txt", "open/ok.txt"):
        shutil.copy(os.path.join(t, name), os.path.join(public, name))

    out = prsmctl("publish", t)
    cid = out.stdout.splitlines()[0]
    assert out.stdout.strip() == cid
    assert cid == ipfs_node.add_dir(public, pin=False, **node_opts("default"))
    assert set(ls(ipfs_node, cid)) == {"public.txt", "open"}
    assert set(ls(ipfs_node, ls(ipfs_node, cid)["open"])) == {"ok.txt"}
    left_out = {"secret.txt": "private", "group.txt": "private", "private": "private",
                "through-only": "private", "closed": "private", "open/key.pem": "private",
                "fifo": "fifo"}
    for name in left_out:
        assert "left out '%s'" % name in out.stderr, out.stderr
    assert "private/inner.txt" not in out.stderr  # its directory was left out whole
    assert "--include-private" in out.stderr

    reply = json.loads(prsmctl("--json", "publish", t).stdout)
    assert reply["cid"] == cid
    assert {e["path"]: e["reason"] for e in reply["skipped"]} == left_out
    assert reply["skipped_count"] == len(left_out)
    modes = {e["path"]: e["mode"] for e in reply["skipped"]}
    assert modes["secret.txt"] == "0600" and modes["through-only"] == "0711"

    everything = json.loads(prsmctl("--json", "publish", "--include-private", t).stdout)
    assert everything["cid"] == ipfs_node.add_dir(full, pin=False, **node_opts("default"))
    assert [e["path"] for e in everything["skipped"]] == ["fifo"]
    assert set(ls(ipfs_node, everything["cid"])) == {"public.txt", "secret.txt", "group.txt",
                                                     "private", "through-only", "closed",
                                                     "open"}

    # a private tree itself, or one under a directory that lets no one through: refused
    for p in (os.path.join(t, "private"), os.path.join(t, "private", "inner.txt"),
              os.path.join(t, "secret.txt")):
        bad = prsmctl("publish", p, check=False)
        assert bad.returncode == 1 and "--include-private" in bad.stderr, (p, bad)
        assert prsmctl("publish", "--include-private", p).stdout.strip()
    inner = prsmctl("publish", "--include-private", os.path.join(t, "private")).stdout.strip()
    assert set(ls(ipfs_node, inner)) == {"inner.txt"}
    # the flags of publish are refused elsewhere
    assert prsmctl("status", "--include-private", t, check=False).returncode == 2
