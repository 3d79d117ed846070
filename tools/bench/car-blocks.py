#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Splits a CAR v1 file into DIR/<cid>, one file per block, named as a gateway request
names it (CIDv1: base32 lower; CIDv0: base58btc), like export-blocks.py, so that a plain web
server can serve them as a trustless gateway. Prints the number of blocks written.
   car-blocks.py CAR DIR"""
import base64
import os
import sys

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def varint(buf, pos):
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def base58(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def cid_end(buf, pos):
    """End of the binary CID starting at pos, and its string form."""
    start = pos
    if buf[pos] == 0x12 and buf[pos + 1] == 0x20:  # CIDv0: a bare sha2-256 multihash
        end = pos + 34
        return end, base58(bytes(buf[start:end]))
    _, pos = varint(buf, pos)  # version
    _, pos = varint(buf, pos)  # codec
    _, pos = varint(buf, pos)  # multihash code
    length, pos = varint(buf, pos)
    end = pos + length
    return end, "b" + base64.b32encode(bytes(buf[start:end])).decode().lower().rstrip("=")


def main():
    car, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(car, "rb") as f:
        buf = memoryview(f.read())
    hlen, pos = varint(buf, 0)
    pos += hlen
    count = 0
    while pos < len(buf):
        slen, pos = varint(buf, pos)
        end = pos + slen
        data_at, name = cid_end(buf, pos)
        with open(os.path.join(out, name), "wb") as b:
            b.write(buf[data_at:end])
        count += 1
        pos = end
    print(count)


main()
