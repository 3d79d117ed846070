#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the blocks of a file imported with the default profile (CIDv1, raw 1 MiB leaves,
at most 1024 links, balanced layout: one level up to 1 GiB, more above) into DIR/<cid>, and
prints the root CID (with --sha256: "CID SHA256", the hash of the whole file from the same
read). For benchmarks that serve blocks from a plain web server; dagtool checks the root."""
import base64
import hashlib
import os
import sys

CHUNK = 1 << 20
LINKS = 1024


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


def file_node(children):
    """A UnixFS file node over (cid binary, file size, cumulative size) children."""
    node = bytearray()
    for binary, size, tsize in children:
        link = b"\x0a" + varint(len(binary)) + binary + b"\x12\x00\x18" + varint(tsize)
        node += b"\x12" + varint(len(link)) + link
    total = sum(c[1] for c in children)
    data = b"\x08\x02\x18" + varint(total) + b"".join(b"\x20" + varint(c[1]) for c in children)
    node += b"\x0a" + varint(len(data)) + data
    return bytes(node), total


def main():
    args = [a for a in sys.argv[1:] if a != "--sha256"]
    src, out = args[0], args[1]
    whole = hashlib.sha256() if "--sha256" in sys.argv[1:] else None
    os.makedirs(out, exist_ok=True)
    level = []  # (cid binary, file size, cumulative size) of the current level
    with open(src, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk and level:
                break
            binary, name = cid_str(0x55, chunk)
            with open(os.path.join(out, name), "wb") as b:
                b.write(chunk)
            if whole:
                whole.update(chunk)
            level.append((binary, len(chunk), len(chunk)))
            if len(chunk) < CHUNK:
                break
    tail = " " + whole.hexdigest() if whole else ""
    if len(level) == 1:
        print(cid_str(0x55, open(src, "rb").read())[1] + tail)
        return
    # balanced layout: groups of LINKS become one node each, level by level, up to one root
    while True:
        parents = []
        for i in range(0, len(level), LINKS):
            group = level[i:i + LINKS]
            node, total = file_node(group)
            binary, name = cid_str(0x70, node)
            with open(os.path.join(out, name), "wb") as b:
                b.write(node)
            parents.append((binary, total, len(node) + sum(c[2] for c in group)))
        level = parents
        if len(level) == 1:
            print(name + tail)
            return


main()
