#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Makes a tree of N empty files for the listing benchmarks: TOP/d<i>/s<j>/f<k>, 1000 files
per directory, ten subdirectories per top directory.
   make-tree.py TOP N"""
import os
import sys

top, n = sys.argv[1], int(sys.argv[2])
per = 1000
for k in range(n):
    d = os.path.join(top, "d%02d" % (k // (per * 10)), "s%d" % (k // per % 10))
    if k % per == 0:
        os.makedirs(d, exist_ok=True)
    os.close(os.open(os.path.join(d, "f%04d" % (k % per)), os.O_CREAT | os.O_WRONLY, 0o644))
