# SPDX-License-Identifier: GPL-2.0-or-later
"""PRSM content formats (issue 19) on real mounts against a real js-ipfs node, built the way
PRSM's Python client builds them (prsm/core/ipfs_sharding.py: each shard `add`ed with the
node's defaults, the manifest json.dumps(indent=2)'d and `add`ed; the IPFS client's
store_model/store_dataset: {"model_data"|"data": bytes.hex(), "metadata"|"provenance": {...,
"data_hash": sha256}} with indent=2): the linked manifest reads back byte-exact as one
read-only file, the wrapper as its decoded bytes with its metadata as xattrs; a shard whose
sha256 or CID does not match gives EIO, never wrong bytes."""
import errno
import hashlib
import json
import os
import subprocess
from datetime import datetime, timezone

import pytest
from ipfsnode import free_ports
from mount import fsync_path
from test_metrics import scrape, value
from test_prsm import cfg, prsmctl

SHARD = 256 * 1024 + 7  # several blocks per shard with the node's 256 KiB chunks


def shard_manifest(node, data, shard_size=SHARD, corrupt_hash=None, swap_cid=None):
    """ContentSharder.shard_content: shards added one by one, then the manifest. corrupt_hash:
    the index of a shard listed with another sha256; swap_cid: (i, cid) lists shard i with
    another shard's CID (its real hash kept)."""
    shards = []
    for i in range(0, len(data), shard_size):
        part = data[i:i + shard_size]
        h = hashlib.sha256(part).hexdigest()
        if corrupt_hash == len(shards):
            h = hashlib.sha256(part + b"x").hexdigest()
        shards.append({"index": len(shards), "cid": node.add(part), "size": len(part),
                       "hash": h})
    if swap_cid is not None:
        i, cid = swap_cid
        shards[i]["cid"] = cid
    manifest = {
        "original_cid": None,
        "original_size": len(data),
        "original_hash": hashlib.sha256(data).hexdigest(),
        "shard_size": shard_size,
        "shards": shards,
        "created_at": datetime.utcnow().isoformat(),
        "manifest_version": "1.0",
        "metadata": {"model": "tiny"},
    }
    return node.add(json.dumps(manifest, indent=2).encode()), manifest


def wrapper(data, key="model_data"):
    meta = {"model_type": "test", "uploader_id": "alice", "prsm_version": "1.0.0",
            "stored_at": datetime.now(timezone.utc).isoformat(), "size_bytes": len(data),
            "size_mb": round(len(data) / (1024 * 1024), 2),
            "data_hash": hashlib.sha256(data).hexdigest(), "storage_type": "model"}
    pkg = {key: data.hex(), "metadata" if key == "model_data" else "provenance": meta}
    return json.dumps(pkg, indent=2).encode(), meta


def link(m, cid, name, *opts):
    rc, out, err = prsmctl("link", *opts, cid, m.path(name))
    return rc, out, err


def read_all(path, chunk=None):
    with open(path, "rb") as f:
        if chunk is None:
            return f.read()
        parts = []
        while True:
            b = f.read(chunk)
            if not b:
                return b"".join(parts)
            parts.append(b)


@pytest.mark.timeout(300)
def test_prsm_formats__manifest_and_wrapper__read_back_byte_exact(ipfs_nodes_factory,
                                                                   mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    data = os.urandom(4 * SHARD + 1234)
    mcid, manifest = shard_manifest(node, data)

    rc, out, err = link(m, mcid, "model.bin")
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["type"] == "prsm" and reply["size"] == len(data) and reply["cid"] == mcid
    st = os.stat(m.path("model.bin"))
    assert st.st_size == len(data) and st.st_mode & 0o777 == 0o444
    assert read_all(m.path("model.bin")) == data
    # random reads across shard boundaries, through a fresh open (the kernel's pages dropped)
    with open(m.path("model.bin"), "rb") as f:
        for off in (0, SHARD - 3, 2 * SHARD, 3 * SHARD + 100, len(data) - 10):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert os.pread(f.fileno(), 4096, off) == data[off:off + 4096]
    assert os.getxattr(m.path("model.bin"), "user.prsm.cid").decode() == mcid
    assert os.getxattr(m.path("model.bin"), "user.prsm.format") == b"shard-manifest"
    assert os.getxattr(m.path("model.bin"),
                       "user.prsm.meta.original_hash").decode() == manifest["original_hash"]
    assert json.loads(os.getxattr(m.path("model.bin"), "user.prsm.meta.metadata")) == \
        {"model": "tiny"}

    # read-only: no write, no truncate; a copy is a byte copy of the decoded file
    with pytest.raises(OSError) as e:
        open(m.path("model.bin"), "r+b")
    assert e.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError) as e:
        os.truncate(m.path("model.bin"), 0)
    assert e.value.errno in (errno.EROFS, errno.EACCES)
    subprocess.run(["cp", m.path("model.bin"), m.path("copy.bin")], check=True, timeout=60)
    assert read_all(m.path("copy.bin")) == data

    # a JSON wrapper as PRSM's store_model makes it: the decoded bytes, metadata as xattrs
    payload = os.urandom(300 * 1024 + 3)
    wjson, meta = wrapper(payload)
    wcid = node.add(wjson)
    rc, out, err = link(m, wcid, "w.bin")
    assert rc == 0, err
    assert os.stat(m.path("w.bin")).st_size == len(payload)
    assert read_all(m.path("w.bin"), chunk=65536 + 1) == payload
    assert os.getxattr(m.path("w.bin"), "user.prsm.format") == b"json-wrapper"
    assert os.getxattr(m.path("w.bin"), "user.prsm.meta.uploader_id") == b"alice"
    assert os.getxattr(m.path("w.bin"), "user.prsm.meta.data_hash").decode() == meta["data_hash"]
    assert json.loads(os.getxattr(m.path("w.bin"), "user.prsm.meta"))["size_bytes"] == \
        len(payload)
    # store_dataset's form: data + provenance
    djson, _ = wrapper(b"a,b\n1,2\n", key="data")
    rc, out, err = link(m, node.add(djson), "d.csv")
    assert rc == 0, err
    assert read_all(m.path("d.csv")) == b"a,b\n1,2\n"

    # --format raw links the JSON itself; --format prsm refuses what is not PRSM content
    rc, out, err = link(m, wcid, "w.json", "--format", "raw")
    assert rc == 0, err
    assert read_all(m.path("w.json")) == wjson
    plain = node.add(b'{"hello": "world"}')
    rc, out, err = link(m, plain, "plain.json")
    assert rc == 0, err
    assert read_all(m.path("plain.json")) == b'{"hello": "world"}'
    rc, out, err = link(m, plain, "plain2.json", "--format", "prsm")
    assert rc == 1 and "not a PRSM shard manifest or JSON wrapper" in err, (rc, err)
    assert not os.path.exists(m.path("plain2.json"))

    # after a restart the layout comes from the index
    m.restart()
    assert read_all(m.path("model.bin")) == data
    assert read_all(m.path("w.bin")) == payload


@pytest.mark.timeout(120)
def test_prsm_formats__binary_starting_with_brace__linked_without_reading_it_whole(
        ipfs_nodes_factory, mount_factory):
    """--format auto reads a file whole when it starts like a JSON object; '{' then a byte
    that no JSON object has next is a binary file (one random file in 256 starts with '{',
    and was read whole at link time: its later reads never asked the node)."""
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node, timeout=2, automatic_pinning=False))
    data = b"{\x00" + os.urandom(2 * 1024 * 1024)
    rc, out, err = link(m, node.add(data, cid_version=1, raw_leaves="true"), "b.bin")
    assert rc == 0, err
    assert json.loads(out)["type"] != "prsm"
    node.stop()
    fd = os.open(m.path("b.bin"), os.O_RDONLY)
    try:
        with pytest.raises(OSError) as e:
            os.pread(fd, 4096, 1024 * 1024)  # past the first block: never fetched
        assert e.value.errno == errno.EIO
    finally:
        os.close(fd)


@pytest.mark.timeout(300)
def test_prsm_formats__corrupt_shard__eio_never_wrong_bytes(ipfs_nodes_factory, mount_factory):
    (node,) = ipfs_nodes_factory(1)
    (port,) = free_ports(1)
    m = mount_factory(config=cfg(node, access_rewards=True,
                                 metrics_listen="127.0.0.1:%d" % port))
    data = os.urandom(3 * SHARD + 99)
    good, manifest = shard_manifest(node, data)

    # shard 1 listed with a sha256 its bytes do not have
    bad_hash, _ = shard_manifest(node, data, corrupt_hash=1)
    # shard 2 listed with shard 0's CID (its own hash kept): the bytes behind the CID differ
    bad_cid, _ = shard_manifest(node, data, swap_cid=(2, manifest["shards"][0]["cid"]))
    for name, cid in (("good", good), ("bad_hash", bad_hash), ("bad_cid", bad_cid)):
        rc, out, err = link(m, cid, name)
        assert rc == 0, err

    with open(m.path("bad_hash"), "rb") as f:
        assert os.pread(f.fileno(), 4096, 0) == data[:4096]  # shard 0 is fine
        with pytest.raises(OSError) as e:
            os.pread(f.fileno(), 4096, SHARD + 10)
        assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        read_all(m.path("bad_hash"))
    assert e.value.errno == errno.EIO
    with open(m.path("bad_cid"), "rb") as f:
        with pytest.raises(OSError) as e:
            os.pread(f.fileno(), 100, 2 * SHARD)
        assert e.value.errno in (errno.EIO,)
    assert read_all(m.path("good")) == data

    # the metrics count the parts checked, the records written and the accesses ledgered
    rc, out, err = prsmctl("--json", "rewards", m.mountpoint)  # flushes records and ledger
    assert rc == 0, err
    _, samples = scrape(port)
    assert value(samples, "prsmfs_prsm_parts_verified_total", result="mismatch") >= 2
    assert value(samples, "prsmfs_prsm_parts_verified_total", result="ok") >= 4
    assert value(samples, "prsmfs_provenance_records_total") >= 3  # the three links
    assert value(samples, "prsmfs_ledger_accesses_total") >= 3  # the opens above

    # a wrapper whose data_hash is not its data's
    wjson, _ = wrapper(b"\x01\x02\x03")
    wjson = wjson.replace(hashlib.sha256(b"\x01\x02\x03").hexdigest().encode(),
                          hashlib.sha256(b"other").hexdigest().encode())
    rc, out, err = link(m, node.add(wjson), "w.bin")
    assert rc == 0, err
    with pytest.raises(OSError) as e:
        read_all(m.path("w.bin"))
    assert e.value.errno == errno.EIO

    # a manifest whose sizes do not add up is refused at link time, with the reason
    broken = dict(manifest, original_size=manifest["original_size"] + 1)
    rc, out, err = link(m, node.add(json.dumps(broken, indent=2).encode()), "broken")
    assert rc == 1 and "original_size" in err, err
    assert not os.path.exists(m.path("broken"))
    # a shard CID PRSM made up (its placeholder) is refused too
    ph = json.loads(json.dumps(manifest))
    ph["shards"][0]["cid"] = "Qm" + "ab" * 22
    rc, out, err = link(m, node.add(json.dumps(ph).encode()), "placeholder")
    assert rc == 1 and "shard 0" in err, err


@pytest.mark.timeout(300)
def test_prsm_formats__provenance_published__verifies_from_the_node_with_the_pubkey(
        ipfs_nodes_factory, mount_factory, workdir):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node))
    rc, out, err = prsmctl("status", m.mountpoint)
    assert rc == 0, err
    key = json.loads(out)["stats"]["prsm"]["key"]
    with open(m.path("a.txt"), "wb") as f:
        f.write(b"provenance to publish\n")
        os.fsync(f.fileno())
    os.rename(m.path("a.txt"), m.path("b.txt"))
    rc, out, err = prsmctl("link", node.add(b"linked"), m.path("c.txt"))
    assert rc == 0, err

    exported = os.path.join(workdir, "export.json")
    rc, out, err = prsmctl("--json", "provenance", "--publish", "--export", exported,
                           m.mountpoint)
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["records"] >= 3
    # the object on the node is the exported document, byte for byte
    published = node.rpc("cat", [("arg", reply["cid"])])
    with open(exported, "rb") as f:
        assert f.read() == published
    fetched = os.path.join(workdir, "fetched.json")
    with open(fetched, "wb") as f:
        f.write(published)
    rc, out, err = prsmctl("provenance", "--verify", fetched, "--pubkey", key)
    assert rc == 0, err
    assert "%d records verified" % reply["records"] in out
    # a record altered after publishing is named
    doc = json.loads(published)
    doc["records"][0]["size"] += 1
    with open(fetched, "w") as f:
        json.dump(doc, f)
    rc, out, err = prsmctl("provenance", "--verify", fetched, "--pubkey", key)
    assert rc == 1 and "record" in err, (rc, err)
    # a human line names the CID
    rc, out, err = prsmctl("provenance", "--publish", m.mountpoint)
    assert rc == 0 and "records published as " in out, (out, err)


@pytest.mark.timeout(300)
def test_prsm_formats__allowed_mime_types__refused_content_fails_close_eperm(ipfs_nodes_factory,
                                                                            mount_factory):
    (node,) = ipfs_nodes_factory(1)
    m = mount_factory(config=cfg(node, allowed_mime_types=["application/json", "text/*",
                                                           "application/x-safetensors"]))
    # JSON, text and safetensors (its header sniffed) are uploaded: they get a CID
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    allowed = {"a.json": b'{"k": [1, 2]}\n', "b.txt": "héllo\n".encode(),
               "c.safetensors": len(header).to_bytes(8, "little") + header + bytes(8)}
    for name, data in allowed.items():
        with open(m.path(name), "wb") as f:
            f.write(data)
        fsync_path(m.path(name))  # uploaded and pinned
        assert os.getxattr(m.path(name), "user.prsm.cid")
    # a zip (PyTorch's .pt) and random bytes are not: close() fails with EPERM
    for name, data in (("d.pt", b"PK\x03\x04" + os.urandom(100)),
                       ("e.bin", b"\x00\x01" + os.urandom(5000))):
        f = open(m.path(name), "wb")
        f.write(data)
        with pytest.raises(OSError) as e:
            f.close()
        assert e.value.errno == errno.EPERM, name
        with pytest.raises(OSError) as e:
            os.getxattr(m.path(name), "user.prsm.cid")
        assert e.value.errno == errno.ENODATA
