# SPDX-License-Identifier: GPL-2.0-or-later
"""Hand-made dag-pb blocks for tests that need content no importer would make: directories
with hostile entry names, or a flat (unsharded) directory of many entries. The node stores
them with block/put like any block; the CIDs are computed here (CIDv0, sha2-256)."""
import hashlib

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    """A protobuf field: wire 0 = varint (payload an int), 2 = bytes."""
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def b58decode(s):
    n = 0
    for ch in s:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(s) - len(s.lstrip("1"))) + raw


def b58encode(b):
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out


def cid_v0(block):
    return b58encode(b"\x12\x20" + hashlib.sha256(block).digest())


def directory(entries):
    """A UnixFS directory block; entries are (name bytes, CIDv0 string, tsize) in the order
    given (a canonical directory sorts them; hostile ones need not)."""
    out = b""
    for name, cid, tsize in entries:
        link = field(1, 2, b58decode(cid)) + field(2, 2, name) + field(3, 0, tsize)
        out += field(2, 2, link)
    return out + field(1, 2, field(1, 0, 1))  # Data: UnixFS Type = Directory


def put(node, block):
    """Stores a dag-pb block on a real node; returns its CIDv0 (checked against the node's)."""
    body, ctype = node._multipart([("block", "application/octet-stream", block)])
    res = node.rpc_json("block/put", [("format", "dag-pb"), ("mhtype", "sha2-256")], body,
                        content_type=ctype)
    want = cid_v0(block)
    got = res.get("Key") or res.get("Cid", {}).get("/")
    assert got == want, "node stored %r as %s, expected %s" % (block[:16], got, want)
    return want
