# SPDX-License-Identifier: GPL-2.0-or-later
"""Crash campaign: kill -9 of the daemon at random points during mixed writes, renames,
truncates and deletes; after each kill, a restart, PRAGMA integrity_check on the index, a
comparison with the model of acknowledged operations, and (once uploads finish) an empty
staging directory.

The writer thread applies an operation to the model only once the system call(s) returned
(acknowledged). The one operation in flight when the daemon died may have happened or not:
the tree after the restart must equal the model, or the model with that operation applied;
a file being written then may also hold a prefix of its new bytes (POSIX makes a created
file visible before its close), and nothing else. A closed file must have its exact bytes.
"""
import json
import os
import random
import sqlite3
import threading
import time

import ipfsnode

NAMES = tuple("f%d" % i for i in range(10))
KiB = 1024


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


def gen_op(rng, files):
    r = rng.random()
    if not files or r < 0.45:
        size = rng.choice((0, rng.randrange(1, 4 * KiB), rng.randrange(1, 300 * KiB),
                           rng.randrange(1, 1500 * KiB)))
        return ["write", rng.choice(NAMES), size, rng.getrandbits(32), rng.random() < 0.05]
    if r < 0.65:
        return ["rename", rng.choice(files), rng.choice(NAMES)]
    if r < 0.8:
        return ["truncate", rng.choice(files), rng.randrange(0, 400 * KiB)]
    return ["unlink", rng.choice(files)]


def apply_model(model, op):
    """model: name -> bytes. Returns the new model (a copy)."""
    m = dict(model)
    kind = op[0]
    if kind == "write":
        m[op[1]] = data_of(op[3], op[2])
    elif kind == "rename":
        if op[1] != op[2]:
            m[op[2]] = m.pop(op[1])
    elif kind == "truncate":
        d = m[op[1]]
        m[op[1]] = d[:op[2]] + bytes(max(0, op[2] - len(d)))
    elif kind == "unlink":
        del m[op[1]]
    return m


class Writer(threading.Thread):
    """Applies random operations in root until one fails (the daemon was killed)."""

    def __init__(self, root, model, rng):
        super().__init__(daemon=True)
        self.root = root
        self.model = model
        self.rng = rng
        self.pending = None
        self.acked = 0
        self.fsynced = set()
        self.error = None

    def p(self, name):
        return os.path.join(self.root, name)

    def do(self, op):
        kind = op[0]
        if kind == "write":
            _, name, size, seed, sync = op
            data = data_of(seed, size)
            fd = os.open(self.p(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for off in range(0, size, 64 * KiB):
                    os.write(fd, data[off:off + 64 * KiB])
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)  # close's error is the acknowledgement that counts
        elif kind == "rename":
            os.rename(self.p(op[1]), self.p(op[2]))
        elif kind == "truncate":
            os.truncate(self.p(op[1]), op[2])
        elif kind == "unlink":
            os.unlink(self.p(op[1]))

    def run(self):
        try:
            while True:
                op = gen_op(self.rng, sorted(self.model))
                self.pending = op
                self.do(op)
                self.model = apply_model(self.model, op)
                if op[0] == "write" and op[4]:
                    self.fsynced.add(op[1])
                elif op[0] in ("write", "truncate", "unlink") or (
                        op[0] == "rename" and op[1] != op[2]):
                    self.fsynced.discard(op[1])
                    if op[0] == "rename":
                        self.fsynced.discard(op[2])
                self.pending = None
                self.acked += 1
        except OSError as e:
            self.error = e


def read_tree(root):
    out = {}
    for name in os.listdir(root):
        with open(os.path.join(root, name), "rb") as f:
            out[name] = f.read()
    return out


def compare(seen, model, pending):
    """'' if seen is allowed, else what is wrong."""
    if seen == model:
        return ""
    if pending is None:
        return describe(seen, model)
    after = apply_model(model, pending) if valid_on(model, pending) else None
    if after is not None and seen == after:
        return ""
    if pending[0] == "write" and after is not None:
        name = pending[1]
        rest_seen = {k: v for k, v in seen.items() if k != name}
        rest_model = {k: v for k, v in model.items() if k != name}
        full = after[name]
        if rest_seen == rest_model and name in seen and full.startswith(seen[name]):
            return ""  # the file being written: a prefix of its new bytes
    return describe(seen, model) + " (in flight: %r)" % (pending[:3],)


def valid_on(model, op):
    return op[0] == "write" or op[1] in model


def describe(seen, model):
    parts = []
    for name in sorted(set(seen) | set(model)):
        if name not in seen:
            parts.append("%s lost" % name)
        elif name not in model:
            parts.append("%s appeared (%d bytes)" % (name, len(seen[name])))
        elif seen[name] != model[name]:
            half = model[name].startswith(seen[name]) and len(seen[name]) < len(model[name])
            parts.append("%s has %d bytes, want %d%s" % (name, len(seen[name]), len(model[name]),
                                                          " (half-visible)" if half else ""))
    return "; ".join(parts)


def integrity(state_dir):
    db = sqlite3.connect(os.path.join(state_dir, "index.sqlite"), timeout=30)
    try:
        return [r[0] for r in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()


def pinned(node, cid):
    """cid pinned recursively on node. js-ipfs names the key in its own base (base58btc for
    a CIDv1 raw leaf) and answers an error when the CID is not pinned."""
    try:
        ans = json.loads(node.rpc("pin/ls", [("arg", cid), ("type", "recursive")], timeout=60))
    except ipfsnode.RpcError:
        return False
    return any(v.get("Type") == "recursive" for v in ans.get("Keys", {}).values())


def staging_left(m, timeout):
    """Waits up to timeout for the staging directory to empty; returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(os.listdir(m.staging_dir()))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def run(m, node, seed, kills, deadline, log):
    """kills kill points (or until deadline). Returns a result dict."""
    rng = random.Random(seed)
    root = m.path("crash")
    os.makedirs(root, exist_ok=True)
    model = {}
    res = {"seed": seed, "kill_points": 0, "acked_ops": 0, "acked_lost": 0, "half_visible": 0,
           "integrity_failures": 0, "staging_leaks": 0, "unpinned_fsynced": 0, "failures": []}
    for k in range(kills):
        if time.monotonic() > deadline:
            break
        w = Writer(root, model, random.Random(rng.getrandbits(64)))
        w.start()
        time.sleep(rng.uniform(0.02, 1.2))
        m.kill()  # SIGKILL by PID
        w.join(timeout=60)
        if w.is_alive():
            res["failures"].append("kill %d: writer still blocked 60 s after the kill" % k)
            break
        res["kill_points"] += 1
        res["acked_ops"] += w.acked
        m.restart()
        problems = integrity(m.state_dir)
        if problems != ["ok"]:
            res["integrity_failures"] += 1
            res["failures"].append("kill %d: integrity_check %s" % (k, problems[:5]))
        seen = read_tree(root)
        wrong = compare(seen, w.model, w.pending)
        if wrong:
            res["acked_lost"] += wrong.count(" lost") + wrong.count(" want ")
            res["half_visible"] += wrong.count("half-visible")
            res["failures"].append("kill %d (seed %d, %d acked ops, in flight %r): %s"
                                   % (k, seed, w.acked, w.pending and w.pending[:3], wrong))
        model = seen  # go on from what is there
        for name in sorted(w.fsynced & set(seen)):
            cid = os.getxattr(os.path.join(root, name), "user.prsm.cid").decode()
            if not pinned(node, cid):
                res["unpinned_fsynced"] += 1
                res["failures"].append("kill %d: fsynced %s (%s) not pinned" % (k, name, cid))
        left = staging_left(m, 90)
        if left:
            res["staging_leaks"] += len(left)
            res["failures"].append("kill %d: staging files left after uploads: %s" % (k, left))
        log("crash: kill %d: %d acked ops, in flight %r, %d files%s"
            % (k, w.acked, w.pending and w.pending[:3], len(seen),
               ", PROBLEM" if wrong or left else ""))
    return res
