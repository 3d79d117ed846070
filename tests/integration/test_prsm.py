# SPDX-License-Identifier: GPL-2.0-or-later
"""PRSM features (issue 19) on real mounts against real js-ipfs nodes: every content
operation leaves a signed, chained provenance record that prsmctl verifies (and a verifier with
only the public key: prsmctl --verify and Python's cryptography module); a record altered in
the index is named; the access ledger's royalties match a scripted sequence of reads by two
creators and survive a restart without double counting; placeholder CIDs are refused."""
import gzip
import hashlib
import json
import os
import sqlite3
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from mount import DaemonFailure, fsync_path, tool_binary


def cfg(node, **extra):
    c = {"rpc_nodes": [node.api_url], "gateway_nodes": [], "timeout": 30}
    c.update(extra)
    return c


def prsmctl(*args):
    p = subprocess.run([tool_binary("prsmctl")] + list(args), capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def identity(m):
    rc, out, err = prsmctl("status", m.mountpoint)
    assert rc == 0, err
    st = json.loads(out)["stats"]["prsm"]
    return st["creator_id"], st["key"]


def canonical(obj):
    """The signed bytes (docs/prsm.md): sorted keys, no whitespace, without "sig"."""
    o = {k: v for k, v in obj.items() if k != "sig"}
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def py_verify(rec, key):
    """Checks a record's signature with only the public key; raises if it does not verify."""
    assert rec["key"] == key
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key[len("ed25519:"):]))
    pub.verify(bytes.fromhex(rec["sig"]), canonical(rec))


def record_hash(rec):
    return hashlib.sha256(json.dumps(rec, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def chain(m, path, want, timeout=30):
    """prsmctl --json provenance PATH once it lists want records (they are written in
    batches); asserts it verified them."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = prsmctl("--json", "provenance", path)
        assert rc == 0, err
        recs = json.loads(out)
        if len(recs) >= want or time.monotonic() >= deadline:
            return recs
        time.sleep(0.2)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    fsync_path(path)  # waits for the upload's commit: the record follows it


@pytest.mark.timeout(300)
def test_prsm__write_rename_link__each_leaves_a_verified_signed_record(ipfs_nodes_factory,
                                                                       mount_factory, workdir):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    creator, key = identity(m)
    assert creator == key and key.startswith("ed25519:") and len(key) == 8 + 64
    st = os.stat(os.path.join(m.state_dir, "identity.key"))
    assert st.st_mode & 0o777 == 0o600

    data = os.urandom(3 * 1024 * 1024 + 17)  # hashed by the record writer (above 1 MiB)
    write(m.path("a.bin"), data)
    cid = os.getxattr(m.path("a.bin"), "user.prsm.cid").decode()
    os.rename(m.path("a.bin"), m.path("b.bin"))
    rc, out, err = prsmctl("link", "--creator", "ed25519:" + "ab" * 32, cid, m.path("c.bin"))
    assert rc == 0, err

    recs = chain(m, m.path("b.bin"), 2)
    assert [r["op"] for r in recs] == ["rename", "create"], recs
    ren, cre = recs
    assert all(r["verified"] for r in recs)
    assert cre["path"] == "/a.bin" and cre["cid"] == cid and cre["size"] == len(data)
    assert cre["sha256"] == hashlib.sha256(data).hexdigest()
    assert cre["old_cid"] is None and cre["creator"] == creator and cre["signer"] == creator
    assert ren["path"] == "/b.bin" and ren["old_path"] == "/a.bin" and ren["cid"] == cid
    assert ren["creator"] == creator
    linked = chain(m, m.path("c.bin"), 1)
    assert [r["op"] for r in linked] == ["link"] and linked[0]["verified"]
    assert linked[0]["cid"] == cid and linked[0]["creator"] == "ed25519:" + "ab" * 32
    assert linked[0]["signer"] == creator and linked[0]["sha256"] is None

    # the xattrs give the latest record and its creator
    latest = json.loads(os.getxattr(m.path("b.bin"), "user.prsm.provenance"))
    assert latest["op"] == "rename" and latest["seq"] == ren["seq"]
    assert os.getxattr(m.path("c.bin"), "user.prsm.creator").decode() == "ed25519:" + "ab" * 32
    # a human table on stdout too, each row checked
    rc, out, err = prsmctl("provenance", m.path("b.bin"))
    assert rc == 0, err
    assert "rename" in out and "create" in out and "BAD" not in out

    # Python checks the signatures and the chain with only the public key
    for r in [cre, ren] + linked:
        py_verify({k: v for k, v in r.items() if k != "verified"}, key)

    # an exported, gzip'd, signed document verifies with only the public key, not another
    doc_path = os.path.join(workdir, "prov.json.gz")
    rc, out, err = prsmctl("provenance", "--export", doc_path, m.mountpoint)
    assert rc == 0, err
    rc, out, err = prsmctl("provenance", "--verify", doc_path, "--pubkey", key)
    assert rc == 0, err
    assert "3 records verified" in out
    with gzip.open(doc_path, "rt") as f:
        doc = json.load(f)
    py_verify(doc, key)
    prev = None
    for r in doc["records"]:
        py_verify(r, key)
        assert r["parent"] == (record_hash(prev) if prev else None)
        prev = r
    rc, out, err = prsmctl("provenance", "--verify", doc_path, "--pubkey",
                           "ed25519:" + "00" * 32)
    assert rc == 1 and "does not verify" in err
    # the status counts the records written
    rc, out, err = prsmctl("status", m.mountpoint)
    assert rc == 0 and json.loads(out)["stats"]["prsm"]["records_written"] == 3, out


@pytest.mark.timeout(120)
def test_prsm__provenance_tracking_off__no_records(ipfs_nodes_factory, mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node, provenance_tracking=False))
    write(m.path("f"), b"untracked")
    os.rename(m.path("f"), m.path("g"))
    rc, out, err = prsmctl("--json", "provenance", m.path("g"))
    assert rc == 0 and json.loads(out) == [], out
    with pytest.raises(OSError):
        os.getxattr(m.path("g"), "user.prsm.provenance")


@pytest.mark.timeout(300)
def test_prsm__record_altered_in_the_index__named_by_prsmctl_provenance(ipfs_nodes_factory,
                                                                         mount_factory, workdir):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    _, key = identity(m)
    write(m.path("x"), b"first")
    write(m.path("x"), b"second version")
    write(m.path("y"), b"other")
    recs = chain(m, m.path("x"), 2)
    assert [r["op"] for r in recs] == ["modify", "create"] and all(r["verified"] for r in recs)
    assert recs[0]["old_cid"] == recs[1]["cid"]
    # small files are hashed when the commit is noted
    assert recs[0]["sha256"] == hashlib.sha256(b"second version").hexdigest()
    assert recs[1]["sha256"] == hashlib.sha256(b"first").hexdigest()
    chain(m, m.path("y"), 1)
    m.stop()

    # raise the size of x's create record with the daemon stopped
    db = sqlite3.connect(os.path.join(m.state_dir, "index.sqlite"))
    seq, text = db.execute("SELECT seq, record FROM provenance WHERE record LIKE "
                           "'%\"op\":\"create\"%' AND path = CAST('/x' AS BLOB)").fetchone()
    rec = json.loads(text)
    rec["size"] = 1 << 30
    db.execute("UPDATE provenance SET record = ? WHERE seq = ?",
               (json.dumps(rec, sort_keys=True, separators=(",", ":")), seq))
    db.commit()
    db.close()

    m.start()
    rc, out, err = prsmctl("provenance", m.path("x"))
    assert rc == 1
    assert "record %d of /x: signature does not verify" % seq in err, err
    rc, out, err = prsmctl("--json", "provenance", m.path("x"))
    assert rc == 1
    bad = {r["seq"]: r["problem"] for r in json.loads(out) if not r["verified"]}
    # the altered record's signature fails; the record after it no longer chains to it
    assert sorted(bad) == [seq, seq + 1], bad
    assert "signature does not verify" in bad[seq]
    assert "follows a record whose signature does not verify" in bad[seq + 1]
    # y's record is untouched and still verifies
    rc, out, err = prsmctl("provenance", m.path("y"))
    assert rc == 0, err
    # the export carries the altered record: the verifier names it
    doc_path = os.path.join(workdir, "prov.json")
    rc, out, err = prsmctl("provenance", "--export", doc_path, m.mountpoint)
    assert rc == 0, err
    rc, out, err = prsmctl("provenance", "--verify", doc_path, "--pubkey", key)
    assert rc == 1 and ("record %d (create /x)" % seq) in err, err


def read_n(path, n):
    for _ in range(n):
        with open(path, "rb") as f:
            f.read()


def rewards(m, *extra):
    rc, out, err = prsmctl("--json", "rewards", *extra, m.mountpoint)
    assert rc == 0, err
    r = json.loads(out)
    return r, {c["creator"]: c for c in r["creators"]}


@pytest.mark.timeout(300)
def test_prsm__rewards__scripted_reads_by_two_creators__totals_match(ipfs_nodes_factory,
                                                                       mount_factory):
    (node,) = ipfs_nodes_factory(1)
    a = mount_factory(config=cfg(node, access_rewards=True), name="alice")
    b = mount_factory(config=cfg(node, access_rewards=True, royalty_rate=0.05), name="bob")
    ida, _ = identity(a)
    idb, _ = identity(b)
    assert ida != idb
    write(a.path("fa"), os.urandom(5000))
    write(b.path("fb"), os.urandom(7000))
    cid_a = os.getxattr(a.path("fa"), "user.prsm.cid").decode()
    cid_b = os.getxattr(b.path("fb"), "user.prsm.cid").decode()
    # each links the other's content, naming its creator
    assert prsmctl("link", "--creator", idb, cid_b, a.path("from_bob"))[0] == 0
    assert prsmctl("link", "--creator", ida, cid_a, b.path("from_alice"))[0] == 0

    read_n(a.path("fa"), 2)          # alice's own: no royalty
    read_n(a.path("from_bob"), 3)    # bob is owed 3 accesses
    read_n(b.path("from_alice"), 4)  # alice is owed 4 accesses
    read_n(b.path("fb"), 1)          # bob's own

    ra, ca = rewards(a)
    assert list(ca) == [idb] and ca[idb]["accesses"] == 3 and ca[idb]["bytes"] >= 0
    assert ca[idb]["ftns_owed_milli"] == 30 and abs(ca[idb]["ftns_owed"] - 0.03) < 1e-9
    assert ra["own"]["accesses"] == 2 and ra["total_ftns_owed_milli"] == 30
    rb, cb = rewards(b)
    assert list(cb) == [ida] and cb[ida]["accesses"] == 4
    assert cb[ida]["ftns_owed_milli"] == 200 and rb["own"]["accesses"] == 1  # 0.05 each

    # the ledger survives a restart, counted once; a crash loses only unflushed counts
    a.restart()
    ra2, ca2 = rewards(a)
    assert ca2[idb]["accesses"] == 3 and ra2["own"]["accesses"] == 2
    read_n(a.path("from_bob"), 1)
    a.kill()  # SIGKILL: the read's count may be lost, never doubled
    a.restart()
    _, ca3 = rewards(a)
    assert ca3[idb]["accesses"] in (3, 4)
    # --since: counts flushed since then; a table on stdout
    _, later = rewards(a, "--since", str(int(time.time()) + 3600))
    assert later == {}
    rc, out, err = prsmctl("rewards", a.mountpoint)
    assert rc == 0 and idb in out and "FTNS" in out, err


@pytest.mark.timeout(120)
def test_prsm__placeholder_cids__refused_at_link(ipfs_nodes_factory, mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    for cid in ("Qm" + "0123456789abcdef" * 2 + "0123456789ab",
                "bafybeig" + "0123456789" * 5):
        rc, out, err = prsmctl("link", cid, m.path("model"))
        assert rc == 1 and "placeholder CID" in err, err
        assert not os.path.exists(m.path("model"))


@pytest.mark.timeout(120)
def test_prsm__identity_key_others_may_read__refused_with_reason(ipfs_nodes_factory,
                                                                 mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    m.stop()
    key = os.path.join(m.state_dir, "identity.key")
    os.chmod(key, 0o644)
    with pytest.raises(DaemonFailure) as e:
        m.start()
    m.proc = None  # it exited at start, as it should
    assert "identity key %s has mode 0644" % key in str(e.value)
    os.chmod(key, 0o600)
    bad = mount_factory(config=cfg(node, royalty_rate=0.2), name="bad", start=False)
    with pytest.raises(DaemonFailure) as e:
        bad.start()
    bad.proc = None
    assert "'royalty_rate'" in str(e.value) and "out of range" in str(e.value)


@pytest.mark.timeout(180)
def test_prsm__delete_and_publish__leave_verified_records(ipfs_nodes_factory, mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    creator, _ = identity(m)
    os.mkdir(m.path("d"))
    write(m.path("d", "f"), b"to be removed")
    cid = os.getxattr(m.path("d", "f"), "user.prsm.cid").decode()
    os.unlink(m.path("d", "f"))
    recs = chain(m, m.path("d", "f"), 2)  # the path is gone: its history is not
    assert [r["op"] for r in recs] == ["delete", "create"] and all(r["verified"] for r in recs)
    assert recs[0]["old_cid"] == cid and recs[0]["cid"] is None
    assert recs[0]["creator"] == creator
    write(m.path("d", "g"), b"kept")
    rc, out, err = prsmctl("publish", m.path("d"))
    assert rc == 0, err
    root = out.strip()
    recs = chain(m, m.path("d"), 1)
    assert [r["op"] for r in recs] == ["publish"] and recs[0]["verified"]
    assert recs[0]["cid"] == root and recs[0]["path"] == "/d"
