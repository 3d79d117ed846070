# SPDX-License-Identifier: GPL-2.0-or-later
"""Hand-made dag-pb blocks for tests that need content no importer would make: directories
with hostile entry names, or a flat (unsharded) directory of many entries. The node stores
them with block/put like any block; the CIDs are computed here (CIDv0, sha2-256).
read_car() gives the blocks of a CAR v1 (as dagtool writes them) by CID string, for test
gateways that serve them without a node."""
import base64
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


def cid_bytes(s):
    """The binary form of a CID string: CIDv0 ("Qm..."), or CIDv1 in base58btc ("z...") or
    base32 ("b...")."""
    if s.startswith("Qm"):
        return b58decode(s)
    if s.startswith("z"):
        return b58decode(s[1:])
    if s.startswith("b"):
        t = s[1:].upper()
        return base64.b32decode(t + "=" * (-len(t) % 8))
    raise ValueError("unknown CID string %r" % s)


def directory(entries):
    """A UnixFS directory block; entries are (name bytes, CID string, tsize) in the order
    given (a canonical directory sorts them; hostile ones need not)."""
    out = b""
    for name, cid, tsize in entries:
        link = field(1, 2, cid_bytes(cid)) + field(2, 2, name) + field(3, 0, tsize)
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


def read_varint(buf, pos):
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def cid_str(raw):
    """The usual string of a binary CID: base58btc for v0, base32 ("b...") for v1."""
    if raw[:2] == b"\x12\x20":
        return b58encode(raw)
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _cid_len(buf, pos):
    if buf[pos:pos + 2] == b"\x12\x20":
        return 34
    end = pos
    for _ in range(3):  # version, codec, hash code
        _, end = read_varint(buf, end)
    dlen, end = read_varint(buf, end)
    return end + dlen - pos


def read_car(path):
    """(root CID strings, {CID string: block bytes}) of a CAR v1; blocks are not verified."""
    with open(path, "rb") as f:
        buf = f.read()
    hlen, pos = read_varint(buf, 0)
    header = buf[pos:pos + hlen]
    pos += hlen
    roots = []
    i = header.find(b"\xd8\x2a")  # CBOR tag 42: a root CID as bytes, with a leading 0x00
    while i >= 0:
        if header[i + 2] == 0x58:  # byte string, one length byte
            n, j = header[i + 3], i + 4
        else:  # byte string of fewer than 24 bytes
            n, j = header[i + 2] - 0x40, i + 3
        roots.append(cid_str(header[j + 1:j + n]))
        i = header.find(b"\xd8\x2a", j + n)
    blocks = {}
    while pos < len(buf):
        slen, pos = read_varint(buf, pos)
        clen = _cid_len(buf, pos)
        blocks[cid_str(buf[pos:pos + clen])] = buf[pos + clen:pos + slen]
        pos += slen
    return roots, blocks
