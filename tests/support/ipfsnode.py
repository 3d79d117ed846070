#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real js-ipfs nodes on loopback for tests (shared/reference/test-node.md).

    nodes = start_nodes(2, workdir, connect=True)   # ready to answer RPC
    try:
        cid = nodes[0].add(b"hello")
        nodes[1].block_get(cid)                      # over bitswap from node 1
    finally:
        stop_nodes(nodes)                            # by PID, in every outcome

The jsipfs binary comes from `tools/setup.sh --print-jsipfs` (installed once per lockfile)
unless $PRSMFS_JSIPFS names one. Each node has its own repo `<workdir>/nodeN`, its log in
`<workdir>/nodeN.log`, and free loopback ports for API, gateway, swarm and RPC. Its daemon
runs in its own process group and is tied to the thread that started it (PR_SET_PDEATHSIG),
so even a test run that is killed leaves no daemon behind; an atexit handler stops what is
still running at a normal exit. Call start()/start_nodes() from the thread that will also
outlive the nodes (pytest's main thread).

CLI (detached nodes, for demos and manual runs; use /usr/bin/python3):
    ipfsnode.py start --n N --dir D [--connect]   prints the API URL(s), writes D/nodes.json
    ipfsnode.py stop --dir D                      stops the nodes listed in D/nodes.json
"""
import argparse
import atexit
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_live = set()  # nodes whose daemon this process started and has not stopped
_live_lock = threading.Lock()
_jsipfs = None


class RpcError(RuntimeError):
    """An RPC answered with an HTTP error; .code is the status, .body the answer."""

    def __init__(self, msg, code=None, body=b""):
        super().__init__(msg)
        self.code = code
        self.body = body


def jsipfs_path():
    """The jsipfs binary: $PRSMFS_JSIPFS, else tools/setup.sh --print-jsipfs (installs once)."""
    global _jsipfs
    path = os.environ.get("PRSMFS_JSIPFS")
    if path:
        return path
    if _jsipfs is None:
        r = subprocess.run(["bash", os.path.join(ROOT, "tools", "setup.sh"), "--print-jsipfs"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("tools/setup.sh --print-jsipfs failed:\n" + r.stderr)
        _jsipfs = r.stdout.strip().splitlines()[-1]
    return _jsipfs


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n):
    """n distinct free loopback TCP ports (bound together, then released) from outside the
    kernel's ephemeral range: a node binds them seconds later, and a port from that range
    may meanwhile become the local end of any outgoing connection (EADDRINUSE, seen once)."""
    lo, hi = _ephemeral_range()
    pool = range(10000, lo) if lo - 10000 >= 1000 else range(hi + 1, 65536)
    rnd = random.SystemRandom()
    socks, ports = [], []
    try:
        for _ in range(200 * n):
            if len(ports) == n:
                break
            port = rnd.choice(pool)
            if port in ports:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    if len(ports) < n:
        raise RuntimeError("no %d free loopback ports outside %d-%d" % (n, lo, hi))
    return ports


def _params(params):
    """dict or list of pairs -> list of pairs; bools as true/false, '_' in keys as '-'."""
    if params is None:
        return []
    items = params.items() if isinstance(params, dict) else params
    out = []
    for k, v in items:
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append((k, str(v)))
    return out


def _opts(opts):
    return [(k.replace("_", "-"), v) for k, v in opts.items()]


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # runs in the child between fork and exec: SIGKILL it when the starting thread ends
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - the atexit handler still covers normal exits
        pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class IpfsNode:
    """One js-ipfs daemon. Attributes: name, repo, api_url, gateway_url, swarm_port, pid,
    peer_id, log_path (and api_port, gateway_port, rpc_port, multiaddr)."""

    def __init__(self, name, repo, log_path=None, ports=None):
        self.name = name
        self.repo = repo
        api, gw, swarm, rpc = ports or free_ports(4)
        self.api_port, self.gateway_port, self.swarm_port, self.rpc_port = api, gw, swarm, rpc
        self.api_url = "http://127.0.0.1:%d" % api
        self.gateway_url = "http://127.0.0.1:%d" % gw
        self.log_path = log_path or repo.rstrip("/") + ".log"
        self.pid = None
        self.peer_id = None
        self.offline = True      # --offline unless the node takes part in bitswap
        self.bootstrap = []      # multiaddrs written into Bootstrap
        self.links = []          # nodes this one (re)connects to after every start
        self.detached = False    # CLI: the daemon outlives this Python process
        self.jsipfs = None
        self._proc = None

    def __repr__(self):
        return "<IpfsNode %s pid=%s %s>" % (self.name, self.pid, self.api_url)

    @property
    def multiaddr(self):
        return "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (self.swarm_port, self.peer_id)

    # -- lifecycle --------------------------------------------------------------------------
    def _init_proc(self, jsipfs):
        """Starts `jsipfs init` (returns the process; call _init_done with it)."""
        self.jsipfs = jsipfs
        os.makedirs(os.path.dirname(self.repo) or ".", exist_ok=True)
        env = dict(os.environ, IPFS_PATH=self.repo)
        return subprocess.Popen([jsipfs, "init", "--profile", "test", "--empty-repo"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def _init_done(self, proc, timeout=120):
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise RuntimeError("jsipfs init of %s timed out:\n%s" % (self.name, out.decode(
                errors="replace")))
        if proc.returncode != 0:
            raise RuntimeError("jsipfs init of %s failed (%d):\n%s" % (
                self.name, proc.returncode, out.decode(errors="replace")))
        self._write_config()

    def init(self, jsipfs=None):
        self._init_done(self._init_proc(jsipfs or jsipfs_path()))

    def _write_config(self):
        path = os.path.join(self.repo, "config")
        with open(path) as f:
            cfg = json.load(f)
        addrs = cfg.setdefault("Addresses", {})
        addrs["Swarm"] = ["/ip4/127.0.0.1/tcp/%d" % self.swarm_port]
        addrs["API"] = "/ip4/127.0.0.1/tcp/%d" % self.api_port
        addrs["Gateway"] = "/ip4/127.0.0.1/tcp/%d" % self.gateway_port
        addrs["RPC"] = "/ip4/127.0.0.1/tcp/%d" % self.rpc_port
        cfg["Bootstrap"] = list(self.bootstrap)
        self.peer_id = cfg["Identity"]["PeerID"]
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)
        os.replace(tmp, path)

    def alive(self):
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self):
        """Starts the daemon process (not waiting for it to be ready)."""
        if self.alive():
            return
        if self.jsipfs is None:
            self.jsipfs = jsipfs_path()
        self._write_config()
        # a daemon killed with SIGKILL leaves its repo lock (and api file) behind; our own
        # process is gone (reaped), so they are stale
        for stale in ("repo.lock", "api"):
            p = os.path.join(self.repo, stale)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
        env = dict(os.environ, IPFS_PATH=self.repo)
        args = [self.jsipfs, "daemon", "--enable-preload=false"]
        if self.offline:
            args.append("--offline")
        with open(self.log_path, "ab") as log:
            log.write(("--- %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(args))).encode())
            log.flush()
            self._proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
                preexec_fn=None if self.detached else _die_with_parent)
        self.pid = self._proc.pid
        with _live_lock:
            _live.add(self)

    def _wait_ready(self, deadline, timeout):
        while True:
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self.stop()
                raise RuntimeError("ipfs node %s exited with %s before it was ready; log %s:\n%s"
                                   % (self.name, rc, self.log_path, self.log_tail()))
            try:
                self.rpc("version", timeout=2)
                return
            except (OSError, RpcError):
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError("ipfs node %s not ready in %g s; log %s:\n%s"
                                   % (self.name, timeout, self.log_path, self.log_tail()))
            time.sleep(0.1)

    def _connect_links(self, deadline):
        """Dials every live linked node and waits until swarm/peers lists it."""
        for other in self.links:
            if not other.alive():
                continue
            while True:
                if other.peer_id in self.peers():
                    break
                try:
                    self.rpc("swarm/connect", [("arg", other.multiaddr)], timeout=10)
                except (OSError, RpcError):
                    pass
                if other.peer_id in self.peers():
                    break
                if time.monotonic() >= deadline:
                    raise RuntimeError("ipfs node %s could not connect to %s; log %s:\n%s"
                                       % (self.name, other.name, self.log_path,
                                          self.log_tail()))
                time.sleep(0.2)

    def peers(self):
        """Peer IDs this node is connected to."""
        try:
            res = self.rpc_json("swarm/peers", timeout=10) or {}
        except (OSError, RpcError):
            return set()
        return {p.get("Peer") for p in (res.get("Peers") or [])}

    def start(self, timeout=60):
        """(Re)start the daemon on the same ports and repo (after stop/kill); returns once it
        answers RPC (and, for connected nodes, is connected to its peers again)."""
        if self.alive():
            return self
        deadline = time.monotonic() + timeout
        self._spawn()
        self._wait_ready(deadline, timeout)
        try:
            self._connect_links(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def _signal(self, sig):
        # the daemon leads its own process group (start_new_session): signal the group, so
        # nothing it may have spawned survives either
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        """SIGTERM by PID, wait up to 10 s, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    proc.wait()
            else:
                self._signal(signal.SIGKILL)  # stragglers of an exited leader, if any
        with _live_lock:
            _live.discard(self)

    def kill(self):
        """SIGKILL now (failure tests); the node can be start()ed again."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                self._signal(signal.SIGKILL)
                proc.wait()
        with _live_lock:
            _live.discard(self)

    # -- RPC --------------------------------------------------------------------------------
    def rpc(self, path, params=None, data=None, timeout=60, content_type=None):
        """POST /api/v0/<path>?<params> with an optional body; returns the answer's bytes and
        raises RpcError (with the answer's body) on an HTTP error."""
        query = urllib.parse.urlencode(_params(params))
        url = "%s/api/v0/%s%s" % (self.api_url, path.lstrip("/"), "?" + query if query else "")
        req = urllib.request.Request(url, data=data if data is not None else b"", method="POST")
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            raise RpcError("%s: POST /api/v0/%s: HTTP %d: %s" % (
                self.name, path, e.code, body.decode(errors="replace").strip()), e.code, body)

    def rpc_json(self, path, params=None, data=None, timeout=60, content_type=None):
        """rpc() decoded as JSON; of an NDJSON stream, the last object (None if empty)."""
        body = self.rpc(path, params, data, timeout, content_type)
        lines = [ln for ln in body.decode().splitlines() if ln.strip()]
        return json.loads(lines[-1]) if lines else None

    @staticmethod
    def _multipart(parts):
        """parts: (name, content type, body[, meta]) -> (body, content type). Names are
        URL-escaped (the node decodes them with decodeURIComponent); js-ipfs's filename pattern
        needs at least two characters, so a one-character name is sent fully percent-encoded.
        meta, a dict like {"mode": "0755", "mtime": "1700000000", "mtime-nsecs": "5"}, goes in
        the part's form name ("file?mode=0755&..."), as Kubo's client sends the UnixFS 1.5
        fields of `add --preserve-mode --preserve-mtime` and js-ipfs reads them."""
        boundary = uuid.uuid4().hex
        out = []
        for part in parts:
            name, ctype, body = part[:3]
            meta = part[3] if len(part) > 3 and part[3] else None
            form = "file" + ("?" + urllib.parse.urlencode(meta) if meta else "")
            fname = urllib.parse.quote(name, safe="")
            if len(fname) < 2:
                fname = "".join("%%%02X" % b for b in name.encode())
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                        "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n"
                        % (boundary, form, fname, ctype)).encode())
            out.append(body)
            out.append(b"\r\n")
        out.append(("--%s--\r\n" % boundary).encode())
        return b"".join(out), "multipart/form-data; boundary=" + boundary

    def add(self, data, timeout=600, **opts):
        """Multipart POST /api/v0/add of one file; returns the root CID string as the node
        prints it. opts are query parameters (cid_version=1 -> cid-version=1, raw_leaves,
        chunker, pin, hash, trickle, cid_base, ...)."""
        body, ctype = self._multipart([("file", "application/octet-stream", data)])
        res = self.rpc_json("add", _opts(opts), body, timeout, ctype)
        return res["Hash"]

    def add_dir(self, path, timeout=600, preserve_mode=False, preserve_mtime=False, **opts):
        """`add -r` of a local directory tree; returns the top directory's CID. Hidden entries
        (names starting with '.') are skipped, as add does; symlinks are sent as symlinks
        (application/symlink, never followed), which Kubo stores but js-ipfs 0.66 drops.
        preserve_mode/preserve_mtime send each entry's mode and mtime (lstat) as Kubo's
        `add --preserve-mode --preserve-mtime` does (no mode for symlinks). opts as for add()."""
        path = os.path.abspath(path)
        top = os.path.basename(path) or "root"

        def meta(p):
            st = os.lstat(p)
            m = {}
            if preserve_mode and not os.path.islink(p):
                m["mode"] = "%04o" % (st.st_mode & 0o7777)
            if preserve_mtime:
                m["mtime"] = str(st.st_mtime_ns // 10**9)
                if st.st_mtime_ns % 10**9:
                    m["mtime-nsecs"] = str(st.st_mtime_ns % 10**9)
            return m

        parts = [(top, "application/x-directory", b"", meta(path))]

        def walk(dirpath, rel):
            with os.scandir(dirpath) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")),
                                 key=lambda e: e.name)
            for e in entries:
                name = rel + "/" + e.name
                if e.is_symlink():
                    parts.append((name, "application/symlink", os.readlink(e.path).encode(),
                                  meta(e.path)))
                elif e.is_dir():
                    parts.append((name, "application/x-directory", b"", meta(e.path)))
                    walk(e.path, name)
                elif e.is_file():
                    with open(e.path, "rb") as f:
                        parts.append((name, "application/octet-stream", f.read(),
                                      meta(e.path)))
                # sockets, fifos, devices: skipped

        walk(path, top)
        body, ctype = self._multipart(parts)
        params = _opts(opts) + [("recursive", "true")]
        out = self.rpc("add", params, body, timeout, ctype)
        events = [json.loads(ln) for ln in out.decode().splitlines() if ln.strip()]
        for e in events:
            if e.get("Name") == top:
                return e["Hash"]
        raise RpcError("%s: add -r of %s: no entry for %r in %r" % (self.name, path, top,
                                                                    events[-3:]))

    def block_get(self, cid, timeout=60):
        """The raw bytes of one block (POST /api/v0/block/get?arg=cid)."""
        return self.rpc("block/get", [("arg", cid)], timeout=timeout)

    def to_json(self):
        return {"name": self.name, "repo": self.repo, "pid": self.pid, "api_url": self.api_url,
                "gateway_url": self.gateway_url, "api_port": self.api_port,
                "gateway_port": self.gateway_port, "swarm_port": self.swarm_port,
                "rpc_port": self.rpc_port, "peer_id": self.peer_id,
                "multiaddr": self.multiaddr, "log_path": self.log_path,
                "start_ticks": _start_ticks(self.pid)}


def start_nodes(n, workdir, connect=False, timeout=60, _detached=False):
    """Starts n nodes with repos under workdir and returns them once all answer RPC. With
    connect, all run online, nodes 2..n bootstrap to node 1 and are connected to it (bitswap)
    on return; without, they run --offline. On any failure every started node is stopped."""
    jsipfs = jsipfs_path()
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    nodes = []
    try:
        for i in range(n):
            name = "node%d" % (i + 1)
            node = IpfsNode(name, os.path.join(workdir, name),
                            log_path=os.path.join(workdir, name + ".log"))
            node.detached = _detached
            nodes.append(node)
        # init is mostly Node.js start-up: run them side by side
        procs = [nd._init_proc(jsipfs) for nd in nodes]
        errors = []
        for nd, p in zip(nodes, procs):
            try:
                nd._init_done(p)
            except RuntimeError as e:
                errors.append(str(e))
        if errors:
            raise RuntimeError("\n".join(errors))
        if connect and n > 1:
            first = nodes[0]
            for nd in nodes:
                nd.offline = False
            first.links = nodes[1:]  # after a restart of node 1, it dials them again
            for nd in nodes[1:]:
                nd.bootstrap = [first.multiaddr]
                nd.links = [first]
        deadline = time.monotonic() + timeout
        if connect and n > 1:
            # node 1 first, so the others find it when they bootstrap
            nodes[0]._spawn()
            nodes[0]._wait_ready(deadline, timeout)
            rest = nodes[1:]
        else:
            rest = nodes
        for nd in rest:
            nd._spawn()
        for nd in rest:
            nd._wait_ready(deadline, timeout)
        for nd in rest:
            nd._connect_links(deadline)
        return nodes
    except BaseException:
        stop_nodes(nodes)
        raise


def stop_nodes(nodes):
    """Stops every node (by PID, SIGTERM then SIGKILL); goes on past errors."""
    first = None
    for node in nodes or ():
        try:
            node.stop()
        except BaseException as e:  # stop the rest before reporting
            first = first or e
    if first is not None:
        raise first


@atexit.register
def _stop_leftovers():
    with _live_lock:
        left = [nd for nd in _live if not nd.detached]
    for node in left:
        try:
            node.stop()
        except Exception:
            pass


def _start_ticks(pid):
    """When the process started (clock ticks since boot, /proc/PID/stat field 22), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _is_our_daemon(entry):
    """The PID in nodes.json is still that node's daemon (not a reused PID): same start time
    and IPFS_PATH. (Not its command line: js-ipfs renames itself to "ipfs".)"""
    pid = entry.get("pid")
    if not pid or not _pid_alive(pid):
        return False
    if "start_ticks" in entry and _start_ticks(pid) != entry["start_ticks"]:
        return False  # (a nodes.json from before start_ticks: IPFS_PATH alone)
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return ("IPFS_PATH=" + entry["repo"]).encode() in env


def _stop_pid(pid):
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description="js-ipfs test nodes on loopback")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--n", type=int, default=1, help="number of nodes (start)")
    ap.add_argument("--dir", required=True, help="work directory (repos, logs, nodes.json)")
    ap.add_argument("--connect", action="store_true", help="nodes 2..n bootstrap to node 1")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args(argv)
    state = os.path.join(os.path.abspath(a.dir), "nodes.json")
    if a.action == "start":
        if os.path.exists(state):
            with open(state) as f:
                if any(_is_our_daemon(e) for e in json.load(f)):
                    sys.exit("ipfsnode: nodes of %s are running; stop them first" % a.dir)
        nodes = start_nodes(a.n, a.dir, a.connect, a.timeout, _detached=True)
        tmp = state + ".tmp"
        with open(tmp, "w") as f:
            json.dump([nd.to_json() for nd in nodes], f, indent=2)
        os.replace(tmp, state)
        for nd in nodes:
            print(nd.api_url)
        return 0
    try:
        with open(state) as f:
            entries = json.load(f)
    except FileNotFoundError:
        return 0
    for e in entries:
        if _is_our_daemon(e):
            _stop_pid(e["pid"])
    os.unlink(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
