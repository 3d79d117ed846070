# SPDX-License-Identifier: GPL-2.0-or-later
"""Model files written from their specs, for tests: safetensors and GGUF (v3).

safetensors: u64 little-endian header length N, N bytes of JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, tensor bytes from
8 + N (offsets relative to there). GGUF: "GGUF", u32 version, u64 tensor count, u64 KV count,
KVs (gguf_string key, u32 type, value), tensor infos (name, u32 n_dims, u64 dims, u32 ggml
type, u64 offset relative to the data), data aligned to general.alignment (default 32).
"""
import json
import struct

ST_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4,
            "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def safetensors(tensors, metadata=None, order=None):
    """tensors: [(name, dtype, shape, bytes)] stored in that order (offsets follow it);
    order: the order of the JSON keys (names), default sorted. Returns (file bytes,
    {name: (begin, end) absolute})."""
    header, data, rel = {}, b"", {}
    for name, dtype, shape, raw in tensors:
        n = ST_SIZES[dtype]
        for d in shape:
            n *= d
        assert len(raw) == n, name
        rel[name] = (len(data), len(data) + len(raw))
        data += raw
    keys = order or sorted(rel)
    if metadata is not None:
        header["__metadata__"] = metadata
    info = {t[0]: t for t in tensors}
    for k in keys:
        header[k] = {"dtype": info[k][1], "shape": list(info[k][2]),
                     "data_offsets": list(rel[k])}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the crate pads the header to 8 bytes
    start = 8 + len(text)
    return (struct.pack("<Q", len(text)) + text + data,
            {k: (start + b, start + e) for k, (b, e) in rel.items()})


def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


GGUF_U32, GGUF_STRING, GGUF_ARRAY = 4, 8, 9
GGML_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q8_0": (8, 32, 34), "I8": (24, 1, 1)}


def gguf(tensors, alignment=32, kvs=None, version=3):
    """tensors: [(name, type, dims, bytes)] in info order; data placed in that order, each
    at the next multiple of the alignment. Returns (file bytes, {name: (begin, end)})."""
    kv = b""
    items = list(kvs or [])
    items.append(("general.architecture", GGUF_STRING, gguf_str("llama")))
    items.append(("tokenizer.ggml.tokens", GGUF_ARRAY,
                  struct.pack("<IQ", GGUF_STRING, 3) + gguf_str("a") + gguf_str("bc")
                  + gguf_str("")))
    if alignment != 32:
        items.append(("general.alignment", GGUF_U32, struct.pack("<I", alignment)))
    for key, typ, raw in items:
        kv += gguf_str(key) + struct.pack("<I", typ) + raw
    infos, data, rel = b"", b"", {}
    for name, typ, dims, raw in tensors:
        code, blck, size = GGML_TYPES[typ]
        n = 1
        for d in dims:
            n *= d
        assert len(raw) == n // blck * size, name
        data += b"\0" * (-len(data) % alignment)
        rel[name] = (len(data), len(data) + len(raw))
        infos += gguf_str(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", code, len(data))
        data += raw
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(items)) + kv + infos
    head += b"\0" * (-len(head) % alignment)
    return head + data, {k: (len(head) + b, len(head) + e) for k, (b, e) in rel.items()}


def hostile_safetensors():
    """(label, bytes) of headers that must never be trusted."""
    ok, _ = safetensors([("a", "F32", [2], b"\1" * 8), ("b", "U8", [4], b"\2" * 4)])
    out = []

    def st(header, data=b"\0" * 16, n=None):
        text = json.dumps(header).encode() if not isinstance(header, bytes) else header
        return struct.pack("<Q", len(text) if n is None else n) + text + data

    out.append(("len-over-file", struct.pack("<Q", 1 << 40) + ok[8:]))
    out.append(("len-huge", struct.pack("<Q", (1 << 64) - 1) + ok[8:]))
    out.append(("past-eof", st({"a": {"dtype": "U8", "shape": [64], "data_offsets": [0, 64]}})))
    out.append(("past-eof-far", st({"a": {"dtype": "U8", "shape": [1 << 40],
                                          "data_offsets": [0, 1 << 40]}})))
    out.append(("overlap", st({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                               "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}})))
    out.append(("gap", st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                           "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]}})))
    out.append(("reversed", st({"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}})))
    out.append(("size-mismatch", st({"a": {"dtype": "F32", "shape": [4],
                                           "data_offsets": [0, 8]}})))
    out.append(("shape-overflow", st({"a": {"dtype": "F64", "shape": [1 << 62, 1 << 62, 4],
                                            "data_offsets": [0, 0]}})))
    out.append(("bad-dtype", st({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}})))
    out.append(("deep-json", st(b"{" + b'"a":[' * 5000 + b"]" * 5000 + b"}")))
    out.append(("dup-names", st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}')))
    out.append(("metadata-not-strings", st({"__metadata__": {"x": 1}})))
    out.append(("truncated-json", ok[:20]))
    out.append(("not-json", st(b"{this is not json}")))
    return out


def hostile_gguf():
    ok, _ = gguf([("t", "F32", [4], b"\0" * 16)])
    head = b"GGUF" + struct.pack("<I", 3)
    out = []
    out.append(("count-absurd", head + struct.pack("<QQ", 1 << 62, 0)))
    out.append(("kv-absurd", head + struct.pack("<QQ", 0, 1 << 62)))
    out.append(("string-huge", head + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 1 << 62)))
    out.append(("array-huge", head + struct.pack("<QQ", 0, 1) + gguf_str("k")
                + struct.pack("<IIQ", GGUF_ARRAY, 0, 1 << 62)))
    out.append(("array-nested", head + struct.pack("<QQ", 0, 1) + gguf_str("k")
                + struct.pack("<IIQ", GGUF_ARRAY, GGUF_ARRAY, 1) + b"\0" * 64))
    out.append(("alignment-3", head + struct.pack("<QQ", 0, 1) + gguf_str("general.alignment")
                + struct.pack("<II", GGUF_U32, 3)))
    out.append(("version-1", b"GGUF" + struct.pack("<I", 1) + ok[8:]))
    out.append(("truncated", ok[:40]))

    def one(offset, dims=(4,), typ=0, n=1, pad=64):
        infos = b""
        for i in range(n):
            infos += gguf_str("t%d" % i) + struct.pack("<I", len(dims))
            infos += b"".join(struct.pack("<Q", d) for d in dims)
            infos += struct.pack("<IQ", typ, offset)
        body = head + struct.pack("<QQ", n, 0) + infos
        return body + b"\0" * (-len(body) % 32) + b"\0" * pad

    out.append(("offset-past-eof", one(1 << 40)))
    out.append(("offset-unaligned", one(4)))
    out.append(("overlap", one(0, n=2)))
    out.append(("dims-overflow", one(0, dims=(1 << 40, 1 << 40, 1 << 40))))
    out.append(("type-unknown", one(0, typ=5)))
    out.append(("block-mismatch", one(0, dims=(33,), typ=8)))
    return out
