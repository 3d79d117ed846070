#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the blocks of a file imported with the default profile (CIDv1, raw 1 MiB leaves,
at most 1024 links: one level, so files up to 1 GiB) into DIR/<cid>, and prints the root
CID. For benchmarks that serve blocks from a plain web server; dagtool checks the root."""
import base64
import hashlib
import os
import sys

CHUNK = 1 << 20


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def cid_str(codec, data):
    binary = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return binary, "b" + base64.b32encode(binary).decode().lower().rstrip("=")


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    links, sizes = [], []
    with open(src, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk and links:
                break
            binary, name = cid_str(0x55, chunk)
            with open(os.path.join(out, name), "wb") as b:
                b.write(chunk)
            links.append(binary)
            sizes.append(len(chunk))
            if len(chunk) < CHUNK:
                break
    if len(links) > 1024:
        sys.exit("export-blocks: more than 1024 chunks needs a deeper tree")
    if len(links) == 1:
        print(cid_str(0x55, open(src, "rb").read())[1])
        return
    node = bytearray()
    for binary, size in zip(links, sizes):
        link = b"\x0a" + varint(len(binary)) + binary + b"\x12\x00\x18" + varint(size)
        node += b"\x12" + varint(len(link)) + link
    data = b"\x08\x02\x18" + varint(sum(sizes)) + b"".join(b"\x20" + varint(s) for s in sizes)
    node += b"\x0a" + varint(len(data)) + data
    _, root = cid_str(0x70, bytes(node))
    with open(os.path.join(out, root), "wb") as b:
        b.write(node)
    print(root)


main()
