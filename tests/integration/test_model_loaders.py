# SPDX-License-Identifier: GPL-2.0-or-later
"""Model loaders as users run them (issue 17), on real mounts against a real js-ipfs node,
with content made here: torch.load of a torch.save'd state dict, numpy memmap of .npy
arrays, a safetensors file read the way safe_open does (header, then tensor slices by mmap),
a GGUF file's header and tensors read by mmap; each with 1 and 8 threads, bytes equal to the
source. Also the user.prsm.tensors xattr, the order prefetch_on_open fetches a safetensors
file in (recorded by a gateway), and hostile headers (plain readahead, exact reads)."""
import errno
import json
import mmap
import os
import random
import struct
import sys
import threading

import pytest
from test_model_loading import CHUNK, MiB, add, behind_gateway, cfg, link, stats

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import modelfiles  # noqa: E402

np = pytest.importorskip("numpy")

XATTR = "user.prsm.tensors"
NP_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "U8": np.uint8,
             "I32": np.int32}


def in_threads(n, fn, items):
    """Runs fn(item) for items spread over n threads; re-raises the first failure."""
    errors = []

    def run(part):
        try:
            for it in part:
                fn(it)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(items[i::n],)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a reader is stuck"
    if errors:
        raise errors[0]


def mounted(ipfs_node, mount_factory, name, data, **extra):
    m = mount_factory(config=cfg([ipfs_node], **extra))
    link(m, add(ipfs_node, data), name)
    return m


def tensors_xattr(path):
    return json.loads(os.getxattr(path, XATTR))


def rand_tensors(rnd):
    """Tensors stored out of name order: (name, dtype, shape, bytes)."""
    out = []
    for name, dtype, shape in (("z.embed", "F32", (300, 257)), ("m.0.w", "F16", (511, 129)),
                               ("a.bias", "I64", (1000,)), ("q.head", "U8", (3, 333_333)),
                               ("b.empty", "F32", (0, 4))):
        n = int(np.prod(shape)) * np.dtype(NP_DTYPES[dtype]).itemsize
        out.append((name, dtype, list(shape), rnd.randbytes(n)))
    return out


# ---- torch.load ----------------------------------------------------------------------------

@pytest.mark.timeout(300)
@pytest.mark.parametrize("threads", [1, 8])
def test_torch_load_state_dict__equal_to_source(ipfs_node, mount_factory, tmp_path, threads):
    torch = pytest.importorskip("torch")
    torch.manual_seed(17)
    sd = {"embed.weight": torch.randn(700, 300), "layer.0.w": torch.randn(300, 300),
          "layer.0.b": torch.arange(300, dtype=torch.int64), "head": torch.randn(3, 1000)}
    src = tmp_path / "model.pt"
    torch.save(sd, src)
    m = mounted(ipfs_node, mount_factory, "model.pt", src.read_bytes())

    def load(_):
        got = torch.load(m.path("model.pt"), map_location="cpu")
        assert sorted(got) == sorted(sd)
        for k, v in sd.items():
            assert torch.equal(got[k], v), k

    in_threads(threads, load, list(range(threads)))


# ---- numpy memmap ----------------------------------------------------------------------------

@pytest.mark.timeout(300)
@pytest.mark.parametrize("threads", [1, 8])
def test_numpy_memmap_npy__slices_equal_to_source(ipfs_node, mount_factory, tmp_path, threads):
    rng = np.random.default_rng(17)
    arrays = {"a.npy": rng.standard_normal((2000, 513)).astype(np.float32),
              "b.npy": rng.integers(0, 1 << 40, size=(777, 1001), dtype=np.int64)}
    m = mount_factory(config=cfg([ipfs_node]))
    for name, arr in arrays.items():
        np.save(tmp_path / name, arr)
        link(m, add(ipfs_node, (tmp_path / name).read_bytes()), name)
    maps = {name: np.load(m.path(name), mmap_mode="r") for name in arrays}
    work = [(name, rows) for name, arr in arrays.items()
            for rows in range(0, arr.shape[0], 97)]
    random.Random(threads).shuffle(work)  # faults all over the files at once

    def check(item):
        name, row = item
        got = np.array(maps[name][row:row + 97])
        assert np.array_equal(got, arrays[name][row:row + 97]), item

    in_threads(threads, check, work)
    for name, arr in arrays.items():
        assert np.array_equal(np.asarray(maps[name]), arr)


# ---- safetensors, read as safe_open does ----------------------------------------------------

def safe_open(path):
    """safe_open from the format spec: header length, JSON header, then the file mapped;
    returns (mmap, {name: (dtype, shape, begin, end)}) with absolute offsets."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    header.pop("__metadata__", None)
    return mm, {k: (v["dtype"], v["shape"], 8 + n + v["data_offsets"][0],
                    8 + n + v["data_offsets"][1]) for k, v in header.items()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("threads", [1, 8])
def test_safetensors_safe_open_mmap__tensors_equal_source_and_xattr(ipfs_node, mount_factory,
                                                                     threads):
    tensors = rand_tensors(random.Random(17))
    data, where = modelfiles.safetensors(tensors, metadata={"format": "pt"})
    m = mounted(ipfs_node, mount_factory, "w.safetensors", data)
    mm, table = safe_open(m.path("w.safetensors"))
    by_name = {t[0]: t for t in tensors}

    def check(name):
        dtype, shape, b, e = table[name]
        arr = np.frombuffer(mm[b:e], dtype=NP_DTYPES[dtype]).reshape(shape)
        want = np.frombuffer(by_name[name][3], dtype=NP_DTYPES[dtype]).reshape(shape)
        assert arr.tobytes() == by_name[name][3] and np.array_equal(arr, want, equal_nan=True)

    in_threads(threads, check, sorted(table, key=lambda k: table[k][2]))
    mm.close()
    x = tensors_xattr(m.path("w.safetensors"))
    assert x["format"] == "safetensors"
    got = [(t["name"], t["dtype"], t["shape"], tuple(t["offsets"])) for t in x["tensors"]]
    assert got == sorted(((n, d, s, where[n]) for n, d, s, _ in tensors), key=lambda t: t[3])
    with open(m.path("w.safetensors"), "rb") as f:
        assert f.read() == data


# ---- GGUF, read by mmap ----------------------------------------------------------------------

def gguf_read(mm):
    """A GGUF v3 reader from the spec over a mapping: {name: (type, dims, begin, end)}."""
    sizes = {0: (1, 4), 1: (1, 2), 8: (32, 34), 24: (1, 1)}
    fmts = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
    vsize = {t: struct.calcsize("<" + f) for t, f in fmts.items()}
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, mm, pos)
        pos += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return bytes(mm[pos - n:pos]).decode()

    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        v = struct.unpack_from("<" + fmts[t], mm, pos)[0]
        pos += vsize[t]
        return v

    assert mm[:4] == b"GGUF"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    align = kv.get("general.alignment", 32)
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        dims = [take("Q") for _ in range(nd)]
        typ, off = take("I"), take("Q")
        infos.append((name, typ, dims, off))
    start = pos + (-pos % align)
    out = {}
    for name, typ, dims, off in infos:
        blck, size = sizes[typ]
        out[name] = (typ, dims, start + off, start + off + int(np.prod(dims)) // blck * size)
    return kv, out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("threads", [1, 8])
def test_gguf_header_and_tensors_by_mmap__equal_source_and_xattr(ipfs_node, mount_factory,
                                                                 threads):
    rnd = random.Random(18)
    tensors = [("token_embd.weight", "F32", [256, 1000], rnd.randbytes(256 * 1000 * 4)),
               ("blk.0.attn_q.weight", "Q8_0", [4096, 64], rnd.randbytes(4096 * 64 // 32 * 34)),
               ("blk.0.norm", "F16", [4097], rnd.randbytes(4097 * 2)),
               ("output.weight", "I8", [333, 1001], rnd.randbytes(333 * 1001))]
    data, where = modelfiles.gguf(tensors, alignment=64)
    m = mounted(ipfs_node, mount_factory, "w.gguf", data)
    with open(m.path("w.gguf"), "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    kv, table = gguf_read(mm)
    assert kv["general.architecture"] == "llama" and kv["general.alignment"] == 64
    by_name = {t[0]: t for t in tensors}

    def check(name):
        _, _, b, e = table[name]
        assert (b, e) == where[name]
        assert mm[b:e] == by_name[name][3], name

    in_threads(threads, check, list(table))
    mm.close()
    x = tensors_xattr(m.path("w.gguf"))
    assert x["format"] == "gguf"
    assert [(t["name"], t["dtype"], t["shape"], tuple(t["offsets"])) for t in x["tensors"]] == \
        [(n, d, s, where[n]) for n, d, s, _ in tensors]


# ---- xattr, prefetch order, hostile headers ----------------------------------------------------

@pytest.mark.timeout(300)
def test_tensors_xattr__enodata_for_other_files_and_hostile_headers(ipfs_node, mount_factory):
    m = mount_factory(config=cfg([ipfs_node]))
    link(m, add(ipfs_node, os.urandom(MiB)), "random.safetensors")
    link(m, add(ipfs_node, b"hello\n"), "small.txt")
    hostile = modelfiles.hostile_safetensors() + modelfiles.hostile_gguf()
    for i, (label, data) in enumerate(hostile):
        link(m, add(ipfs_node, data), "h%d" % i)
    names = ["random.safetensors", "small.txt"] + ["h%d" % i for i in range(len(hostile))]
    for name in names:
        with pytest.raises(OSError) as e:
            os.getxattr(m.path(name), XATTR)
        assert e.value.errno == errno.ENODATA, name
    assert XATTR not in os.listxattr(m.path("small.txt"))


def block_index(data):
    """{raw leaf CID: index} of data's CHUNK-sized blocks."""
    from test_model_loading import raw_leaf_cid
    return {raw_leaf_cid(data[i:i + CHUNK]): i // CHUNK for i in range(0, len(data), CHUNK)}


@pytest.mark.timeout(300)
def test_prefetch_on_open_safetensors__fetched_in_tensor_offset_order(ipfs_node, mount_factory):
    """Tensors stored out of name order (z, m, a, q): the gateway sees the blocks asked for
    in offset order (the header's first), not in name order; the table was used."""
    from faultgw import FaultGateway

    rnd = random.Random(19)
    tensors = [(n, "U8", [4 * CHUNK], rnd.randbytes(4 * CHUNK)) for n in "zmaq"]
    data, where = modelfiles.safetensors(tensors)
    root = add(ipfs_node, data)
    idx = block_index(data)
    gw = FaultGateway(source=ipfs_node).start()
    try:
        m = behind_gateway(mount_factory, gw, latency_ms=20, prefetch_on_open="*.safetensors",
                           prefetch_on_open_min_size=0)
        link(m, root, "o.safetensors")
        with open(m.path("o.safetensors"), "rb") as f:
            for _ in range(600):  # the job's blocks, without reading a byte here
                with gw.lock:
                    seen = [idx[c] for c in gw.order if c in idx]
                if len(set(seen)) == len(idx):
                    break
                threading.Event().wait(0.05)
            assert f.read() == data
        assert sorted(set(seen)) == list(range(len(idx))), seen
        assert seen[0] == 0  # the header's block first
        # 4 fetchers: a block may come at most a few places before one queued ahead of it
        for i, b in enumerate(seen):
            assert b >= max(seen[:i + 1]) - 4, seen
        # and not in name order (a: blocks 8.., m: 4.., q: 12.., z: 0..)
        assert seen[4:8] != [8, 9, 10, 11] or seen[8:12] != [4, 5, 6, 7]
        st = stats(m)["loading"]
        assert st["prefetches_on_open"] == 1 and st["prefetches_by_tensors"] == 1, st
    finally:
        gw.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("label", ["overlap", "gap", "past-eof-far", "len-over-file",
                                   "deep-json"])
def test_prefetch_on_open_hostile_header__plain_readahead_exact_reads(ipfs_node, mount_factory,
                                                                      label):
    head = dict(modelfiles.hostile_safetensors())[label]
    data = head + os.urandom(3 * MiB)  # a header the parser refuses, then content
    m = mounted(ipfs_node, mount_factory, "bad.safetensors", data,
                prefetch_on_open="*.safetensors", prefetch_on_open_min_size=0)
    with open(m.path("bad.safetensors"), "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        offs = list(range(0, len(data), 4096 * 37))
        random.Random(3).shuffle(offs)
        for o in offs:
            assert mm[o:o + 4096] == data[o:o + 4096], o
        mm.close()
        assert f.read() == data
    st = stats(m)["loading"]
    assert st["prefetches_on_open"] == 1 and st["prefetches_by_tensors"] == 0, st
    with pytest.raises(OSError) as e:
        os.getxattr(m.path("bad.safetensors"), XATTR)
    assert e.value.errno == errno.ENODATA
