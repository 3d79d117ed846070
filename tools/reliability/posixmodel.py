# SPDX-License-Identifier: GPL-2.0-or-later
"""Model-checked POSIX: random file operations on a real mount, each checked against an
in-memory model of what POSIX promises (contents, sizes, names, link counts).

A Runner owns one directory of the mount and a model of it. gen_op() draws a valid operation
from a seeded random.Random and the model; apply() runs it on the mount, updates the model and
checks what the operation touched (existence, st_size, st_nlink, the bytes of the range it
wrote or read); check_all() compares the whole tree (names, sizes, link counts, every byte).
Operations are plain lists (JSON), so that a log replays without the generator: replay()
skips operations the model says are invalid at that point, which is what lets shrink() (a
delta-debugging ddmin over the log) drop any subset. ["restart"] closes every descriptor,
calls the restart callback (the driver stops and starts the daemon) and checks the tree:
closed files must survive.
"""
import errno
import mmap
import os
import random
import shutil
import stat
import time

DIRS = ("", "a", "b", "a/c")
FILES = ("f0", "f1", "f2", "f3", "f4")
MAX_SLOTS = 6
KiB = 1024


class Mismatch(AssertionError):
    """The mount disagreed with the model (or failed an operation the model says is valid)."""


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


def parent(path):
    return path.rpartition("/")[0]


class Model:
    def __init__(self):
        self.names = {}          # file path -> ino
        self.dirs = {""}         # directory paths
        self.inodes = {}         # ino -> {"data": bytearray, "nlink": int}
        self.slots = {}          # slot -> ino (open descriptors)
        self.next_ino = 1

    def opened(self, ino):
        return any(i == ino for i in self.slots.values())

    def drop_if_dead(self, ino):
        if self.inodes[ino]["nlink"] == 0 and not self.opened(ino):
            del self.inodes[ino]

    def valid(self, op):
        kind = op[0]
        if kind in ("restart", "check"):
            return True
        if kind == "open":
            _, slot, path, how = op
            if slot in self.slots or parent(path) not in self.dirs:
                return False
            if how == "excl":
                return path not in self.names
            if how == "rdwr":
                return path in self.names
            return True
        if kind in ("close", "pread", "ftruncate", "fsync", "pwrite"):
            return op[1] in self.slots
        if kind in ("mmap_write", "mmap_read"):
            if op[1] not in self.slots:
                return False
            size = len(self.inodes[self.slots[op[1]]]["data"])
            return op[3] > 0 and op[2] + op[3] <= size
        if kind == "truncate":
            return op[1] in self.names
        if kind == "rename":
            return op[1] in self.names and parent(op[2]) in self.dirs
        if kind == "link":
            return op[1] in self.names and op[2] not in self.names and parent(op[2]) in self.dirs
        if kind == "unlink":
            return op[1] in self.names
        if kind == "mkdir":
            return op[1] not in self.dirs and parent(op[1]) in self.dirs
        if kind == "rmdir":
            p = op[1]
            return (p in self.dirs and p != "" and
                    not any(parent(n) == p for n in self.names) and
                    not any(parent(d) == p for d in self.dirs if d != p))
        raise ValueError("unknown operation %r" % (op,))

    # the model's side of each operation (after the real one succeeded)
    def open(self, slot, path, how):
        if path not in self.names:
            ino = self.next_ino
            self.next_ino += 1
            self.inodes[ino] = {"data": bytearray(), "nlink": 1}
            self.names[path] = ino
        ino = self.names[path]
        if how == "create_trunc":
            self.inodes[ino]["data"] = bytearray()
        self.slots[slot] = ino

    def close(self, slot):
        ino = self.slots.pop(slot)
        self.drop_if_dead(ino)

    def write(self, ino, off, data):
        buf = self.inodes[ino]["data"]
        if len(buf) < off:
            buf.extend(bytes(off - len(buf)))
        buf[off:off + len(data)] = data

    def resize(self, ino, size):
        buf = self.inodes[ino]["data"]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))

    def unlink(self, path):
        ino = self.names.pop(path)
        self.inodes[ino]["nlink"] -= 1
        self.drop_if_dead(ino)

    def rename(self, src, dst):
        ino = self.names[src]
        if self.names.get(dst) == ino:
            return  # two links of one inode: POSIX says rename does nothing
        if dst in self.names:
            self.unlink(dst)
        del self.names[src]
        self.names[dst] = ino

    def link(self, src, dst):
        ino = self.names[src]
        self.names[dst] = ino
        self.inodes[ino]["nlink"] += 1


class Runner:
    def __init__(self, root, restart=None, full_every=250, fsync_weight=0.1):
        self.root = root
        self.restart_cb = restart
        self.full_every = full_every
        self.fsync_weight = fsync_weight
        self.model = Model()
        self.fds = {}  # slot -> real fd
        self.log = []
        self.ops = 0
        self.checks = 0
        os.makedirs(root, exist_ok=True)

    def p(self, path):
        return os.path.join(self.root, path) if path else self.root

    # ---- generation -----------------------------------------------------------------------
    def gen_op(self, rng):
        m = self.model
        files = sorted(m.names)
        slots = sorted(m.slots)
        free = [s for s in range(MAX_SLOTS) if s not in m.slots]
        dirs = sorted(m.dirs)

        def any_path():
            return "/".join(x for x in (rng.choice(dirs), rng.choice(FILES)) if x)

        def offset():
            r = rng.random()
            if r < 0.6:
                return rng.randrange(0, 64 * KiB)
            if r < 0.95:
                return rng.randrange(0, 300 * KiB)
            return rng.randrange(0, 1300 * KiB)  # past the first chunk(s)

        def length():
            return rng.choice((1, rng.randrange(1, 512), rng.randrange(1, 16 * KiB),
                               rng.randrange(1, 70 * KiB)))

        choices = []
        if free:
            choices += [("open", 10)]
        if slots:
            choices += [("close", 7), ("pwrite", 22), ("pread", 12), ("ftruncate", 4),
                        ("mmap_write", 4), ("mmap_read", 4), ("fsync", self.fsync_weight)]
        if files:
            choices += [("truncate", 2), ("rename", 6), ("link", 3), ("unlink", 5)]
        choices += [("mkdir", 1), ("rmdir", 1)]
        for _ in range(50):
            total = sum(w for _, w in choices)
            x = rng.uniform(0, total)
            for kind, w in choices:
                x -= w
                if x <= 0:
                    break
            if kind == "open":
                r = rng.random()
                if files and r < 0.5:
                    op = ["open", free[0], rng.choice(files), "rdwr"]
                else:
                    how = rng.choice(("create", "create_trunc", "excl"))
                    op = ["open", free[0], any_path(), how]
            elif kind in ("close", "fsync"):
                op = [kind, rng.choice(slots)]
            elif kind == "pwrite":
                op = ["pwrite", rng.choice(slots), offset(), length(), rng.getrandbits(32)]
            elif kind == "pread":
                op = ["pread", rng.choice(slots), offset(), length()]
            elif kind == "ftruncate":
                op = ["ftruncate", rng.choice(slots), offset()]
            elif kind in ("mmap_write", "mmap_read"):
                slot = rng.choice(slots)
                size = len(m.inodes[m.slots[slot]]["data"])
                if size == 0:
                    continue
                off = rng.randrange(0, size)
                n = rng.randrange(1, min(size - off, 20 * KiB) + 1)
                op = [kind, slot, off, n]
                if kind == "mmap_write":
                    op.append(rng.getrandbits(32))
            elif kind == "truncate":
                op = ["truncate", rng.choice(files), offset()]
            elif kind in ("rename", "link"):
                op = [kind, rng.choice(files), any_path()]
            elif kind == "unlink":
                op = ["unlink", rng.choice(files)]
            elif kind == "mkdir":
                op = ["mkdir", rng.choice(DIRS[1:])]
            else:
                op = ["rmdir", rng.choice(DIRS[1:])]
            if m.valid(op):
                return op
        return ["check"]

    # ---- checks ---------------------------------------------------------------------------
    def fail(self, op, msg):
        raise Mismatch("op %d %r: %s" % (len(self.log), op, msg))

    def check_path(self, op, path):
        m = self.model
        try:
            st = os.lstat(self.p(path))
        except FileNotFoundError:
            st = None
        except OSError as e:
            self.fail(op, "lstat %s: %s" % (path, e))
        if path not in m.names:
            if st is not None:
                self.fail(op, "%s exists, the model says it does not" % path)
            return
        if st is None:
            self.fail(op, "%s missing" % path)
        node = m.inodes[m.names[path]]
        if not stat.S_ISREG(st.st_mode):
            self.fail(op, "%s is not a regular file (mode %o)" % (path, st.st_mode))
        if st.st_size != len(node["data"]):
            self.fail(op, "%s st_size %d, model %d" % (path, st.st_size, len(node["data"])))
        if st.st_nlink != node["nlink"]:
            self.fail(op, "%s st_nlink %d, model %d" % (path, st.st_nlink, node["nlink"]))

    def check_slot(self, op, slot, off=0, n=0):
        ino = self.model.slots[slot]
        data = self.model.inodes[ino]["data"]
        fd = self.fds[slot]
        st = os.fstat(fd)
        if st.st_size != len(data):
            self.fail(op, "fstat(slot %d) st_size %d, model %d" % (slot, st.st_size, len(data)))
        if n:
            got = os.pread(fd, n, off)
            want = bytes(data[off:off + n])
            if got != want:
                self.fail(op, "pread(slot %d, %d, %d): %d bytes differ from the model (got %d, "
                          "want %d bytes)" % (slot, off, n, diff_count(got, want), len(got),
                                              len(want)))

    def check_all(self, op=("check",)):
        m = self.model
        self.checks += 1
        seen_files, seen_dirs = set(), {""}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel
            for d in dirnames:
                seen_dirs.add(os.path.join(rel, d) if rel else d)
            for f in filenames:
                seen_files.add(os.path.join(rel, f) if rel else f)
        if seen_dirs != m.dirs:
            self.fail(op, "directories %s, model %s" % (sorted(seen_dirs), sorted(m.dirs)))
        if seen_files != set(m.names):
            self.fail(op, "files %s, model %s" % (sorted(seen_files), sorted(m.names)))
        for path, ino in m.names.items():
            self.check_path(op, path)
            with open(self.p(path), "rb") as f:
                got = f.read()
            want = bytes(m.inodes[ino]["data"])
            if got != want:
                self.fail(op, "%s: content differs from the model (%d bytes, want %d; %d differ)"
                          % (path, len(got), len(want), diff_count(got, want)))
        for slot in m.slots:
            self.check_slot(op, slot)

    # ---- execution ------------------------------------------------------------------------
    def apply(self, op):
        """Runs one valid operation and checks it; raises Mismatch."""
        m = self.model
        kind = op[0]
        self.log.append(op)
        self.ops += 1
        try:
            if kind == "open":
                _, slot, path, how = op
                flags = os.O_RDWR | {"create": os.O_CREAT, "create_trunc": os.O_CREAT | os.O_TRUNC,
                                     "excl": os.O_CREAT | os.O_EXCL, "rdwr": 0}[how]
                self.fds[slot] = os.open(self.p(path), flags, 0o644)
                m.open(slot, path, how)
                self.check_slot(op, slot)
                self.check_path(op, path)
            elif kind == "close":
                fd = self.fds.pop(op[1])
                m.close(op[1])
                os.close(fd)
            elif kind == "pwrite":
                _, slot, off, n, seed = op
                data = data_of(seed, n)
                w = os.pwrite(self.fds[slot], data, off)
                if w != n:
                    self.fail(op, "short write %d of %d" % (w, n))
                m.write(m.slots[slot], off, data)
                self.check_slot(op, slot, max(0, off - 8), n + 16)
            elif kind == "pread":
                self.check_slot(op, op[1], op[2], op[3])
            elif kind == "ftruncate":
                os.ftruncate(self.fds[op[1]], op[2])
                m.resize(m.slots[op[1]], op[2])
                self.check_slot(op, op[1], max(0, op[2] - 64), 128)
            elif kind == "truncate":
                os.truncate(self.p(op[1]), op[2])
                m.resize(m.names[op[1]], op[2])
                self.check_path(op, op[1])
            elif kind == "fsync":
                os.fsync(self.fds[op[1]])
                self.check_slot(op, op[1])
            elif kind in ("mmap_write", "mmap_read"):
                slot, off, n = op[1], op[2], op[3]
                data = m.inodes[m.slots[slot]]["data"]
                mm = mmap.mmap(self.fds[slot], len(data))
                try:
                    if kind == "mmap_write":
                        new = data_of(op[4], n)
                        mm[off:off + n] = new
                        mm.flush()
                        m.write(m.slots[slot], off, new)
                    else:
                        got = mm[off:off + n]
                        if got != bytes(data[off:off + n]):
                            self.fail(op, "mmap read: %d bytes differ" % diff_count(
                                got, bytes(data[off:off + n])))
                finally:
                    mm.close()
                self.check_slot(op, slot, off, n)
            elif kind == "rename":
                os.rename(self.p(op[1]), self.p(op[2]))
                m.rename(op[1], op[2])
                self.check_path(op, op[1])
                self.check_path(op, op[2])
            elif kind == "link":
                os.link(self.p(op[1]), self.p(op[2]))
                m.link(op[1], op[2])
                self.check_path(op, op[1])
                self.check_path(op, op[2])
            elif kind == "unlink":
                ino = m.names[op[1]]
                os.unlink(self.p(op[1]))
                m.unlink(op[1])
                self.check_path(op, op[1])
                for path, i in m.names.items():
                    if i == ino:
                        self.check_path(op, path)
            elif kind == "mkdir":
                os.mkdir(self.p(op[1]))
                m.dirs.add(op[1])
            elif kind == "rmdir":
                os.rmdir(self.p(op[1]))
                m.dirs.discard(op[1])
            elif kind == "restart":
                self.close_all()
                if self.restart_cb:
                    self.restart_cb()
                self.check_all(op)
            elif kind == "check":
                self.check_all(op)
            else:
                raise ValueError("unknown operation %r" % (op,))
        except OSError as e:
            self.fail(op, "%s failed: %s" % (kind, e))
        if self.full_every and self.ops % self.full_every == 0 and kind not in ("restart", "check"):
            self.check_all(op)

    def drop_fds(self):
        """Closes every descriptor without a check (after a failure: the model no longer
        says what they hold, and open ones keep the mount from unmounting)."""
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def close_all(self):
        """Closes every descriptor (logged as close operations, so that replays match)."""
        for slot in sorted(self.model.slots):
            self.apply(["close", slot])

    def step(self, rng):
        self.apply(self.gen_op(rng))


def diff_count(a, b):
    return sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))


def replay(root, ops, restart=None, full_every=0):
    """Replays ops in a fresh directory root; returns the Mismatch it raised, or None. The
    directory and every descriptor are gone afterwards."""
    r = Runner(root, restart=restart, full_every=full_every)
    try:
        for op in ops:
            if r.model.valid(op):
                r.apply(op)
        r.check_all()
        return None
    except Mismatch as e:
        return e
    finally:
        for fd in r.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(root, ignore_errors=True)


def shrink(ops, fails, budget_s=120):
    """ddmin: a short sub-list of ops for which fails(sub) is still true (fails(ops) must be).
    Stops refining after budget_s seconds and returns the shortest list found so far."""
    deadline = time.monotonic() + budget_s
    n = 2
    while len(ops) >= 2 and time.monotonic() < deadline:
        chunk = max(1, len(ops) // n)
        reduced = False
        for i in range(0, len(ops), chunk):
            if time.monotonic() > deadline:
                break
            rest = ops[:i] + ops[i + chunk:]
            if rest and fails(rest):
                ops = rest
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(ops), n * 2)
    return ops


def is_restart_error(e):
    return isinstance(e, OSError) and e.errno in (errno.ENOTCONN, errno.ECONNABORTED)
