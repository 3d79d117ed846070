#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real js-ipfs nodes on loopback for tests (see ../shared/reference/test-node.md).

    nodes = start_nodes(2, workdir, connect=True)   # ready to answer RPC
    cid = nodes[0].add(b"hello")
    nodes[1].block_get(cid)                          # over bitswap from node 1
    stop_nodes(nodes)                                # by PID, in every outcome

CLI: ipfsnode.py start --n N --dir D [--connect]   (detached; writes D/nodes.json)
     ipfsnode.py stop --dir D
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_live = set()


def jsipfs_path():
    path = os.environ.get("PRSMFS_JSIPFS")
    if path:
        return path
    out = subprocess.run(["bash", os.path.join(ROOT, "tools", "setup.sh"), "--print-jsipfs"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class RpcError(RuntimeError):
    pass


class IpfsNode:
    def __init__(self, name, repo, ports=None):
        self.name = name
        self.repo = repo
        api, gw, swarm, rpc = ports or free_ports(4)
        self.api_port, self.gateway_port, self.swarm_port, self.rpc_port = api, gw, swarm, rpc
        self.api_url = "http://127.0.0.1:%d" % api
        self.gateway_url = "http://127.0.0.1:%d" % gw
        self.log_path = os.path.join(repo, "daemon.log")
        self.pid = None
        self.peer_id = None
        self.offline = True
        self.bootstrap = []
        self._proc = None

    # -- lifecycle --------------------------------------------------------------------------
    def init(self, jsipfs):
        self.jsipfs = jsipfs
        env = dict(os.environ, IPFS_PATH=self.repo)
        subprocess.run([jsipfs, "init", "--profile", "test", "--empty-repo"], env=env,
                       check=True, capture_output=True, timeout=120)
        self._write_config()

    def _write_config(self):
        path = os.path.join(self.repo, "config")
        with open(path) as f:
            cfg = json.load(f)
        cfg["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/%d" % self.swarm_port]
        cfg["Addresses"]["API"] = "/ip4/127.0.0.1/tcp/%d" % self.api_port
        cfg["Addresses"]["Gateway"] = "/ip4/127.0.0.1/tcp/%d" % self.gateway_port
        cfg["Addresses"]["RPC"] = "/ip4/127.0.0.1/tcp/%d" % self.rpc_port
        cfg["Bootstrap"] = list(self.bootstrap)
        self.peer_id = cfg["Identity"]["PeerID"]
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)

    def start(self, timeout=90):
        """(Re)start the daemon on the same ports and repo; returns when RPC answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._write_config()
        # a node killed with SIGKILL leaves its repo lock (and API file) behind; its process
        # is gone (we waited for it), so they are stale
        for stale in ("repo.lock", "api"):
            path = os.path.join(self.repo, stale)
            if os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        env = dict(os.environ, IPFS_PATH=self.repo)
        args = [self.jsipfs, "daemon"] + (["--offline"] if self.offline else [])
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, start_new_session=True)
        finally:
            log.close()
        self.pid = self._proc.pid
        _live.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("ipfs node %s exited with %s:\n%s"
                                   % (self.name, self._proc.returncode, self.log_tail()))
            try:
                self.rpc("version", timeout=2)
                return self
            except (OSError, RpcError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("ipfs node %s not ready in %d s:\n%s"
                           % (self.name, timeout, self.log_tail()))

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self._proc is not None and self._proc.poll() is None

    def _signal(self, sig):
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        """SIGTERM by PID, up to 10 s, then SIGKILL. Idempotent."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait(timeout=10)
        self._signal(signal.SIGKILL)  # leftovers in the process group
        _live.discard(self)

    def kill(self):
        """SIGKILL now (failure tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        _live.discard(self)

    # -- RPC --------------------------------------------------------------------------------
    def rpc(self, path, params=None, data=None, timeout=60, content_type=None):
        query = urllib.parse.urlencode(params or [], doseq=True)
        url = "%s/api/v0/%s%s" % (self.api_url, path, "?" + query if query else "")
        req = urllib.request.Request(url, data=data if data is not None else b"", method="POST")
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raise RpcError("%s %s: HTTP %d: %s" % (self.name, path, e.code,
                                                   e.read().decode(errors="replace")))

    def rpc_json(self, path, params=None, data=None, timeout=60, content_type=None):
        body = self.rpc(path, params, data, timeout, content_type)
        lines = [ln for ln in body.decode().splitlines() if ln.strip()]
        return json.loads(lines[-1]) if lines else None

    @staticmethod
    def _multipart(parts):
        boundary = uuid.uuid4().hex
        out = []
        for name, ctype, body in parts:
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                        "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n"
                        % (boundary, urllib.parse.quote(name, safe=""), ctype)).encode())
            out.append(body)
            out.append(b"\r\n")
        out.append(("--%s--\r\n" % boundary).encode())
        return b"".join(out), "multipart/form-data; boundary=" + boundary

    def add(self, data, timeout=600, **opts):
        """POST /api/v0/add of one file; returns the root CID string."""
        body, ctype = self._multipart([("file", "application/octet-stream", data)])
        params = {k.replace("_", "-"): str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in opts.items()}
        res = self.rpc_json("add", params, body, timeout, ctype)
        return res["Hash"]

    def add_dir(self, path, timeout=600, **opts):
        """add -r of a local tree (hidden entries skipped, like add); returns the top CID."""
        top = os.path.basename(os.path.abspath(path))
        parts = [(top, "application/x-directory", b"")]
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = os.path.relpath(dirpath, path)
            base = top if rel == "." else top + "/" + rel
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    parts.append((base + "/" + d, "application/symlink",
                                  os.readlink(full).encode()))
                else:
                    parts.append((base + "/" + d, "application/x-directory", b""))
            for fn in sorted(f for f in filenames if not f.startswith(".")):
                full = os.path.join(dirpath, fn)
                if os.path.islink(full):
                    parts.append((base + "/" + fn, "application/symlink",
                                  os.readlink(full).encode()))
                else:
                    with open(full, "rb") as f:
                        parts.append((base + "/" + fn, "application/octet-stream", f.read()))
        body, ctype = self._multipart(parts)
        params = {k.replace("_", "-"): str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in opts.items()}
        params["recursive"] = "true"
        body_out = self.rpc("add", params, body, timeout, ctype)
        events = [json.loads(ln) for ln in body_out.decode().splitlines() if ln.strip()]
        for e in events:
            if e.get("Name") == top:
                return e["Hash"]
        return events[-1]["Hash"]

    def block_get(self, cid, timeout=60):
        return self.rpc("block/get", {"arg": cid}, timeout=timeout)

    def to_json(self):
        return {"name": self.name, "repo": self.repo, "pid": self.pid, "api_url": self.api_url,
                "gateway_url": self.gateway_url, "swarm_port": self.swarm_port,
                "peer_id": self.peer_id, "log_path": self.log_path}


def start_nodes(n, workdir, connect=False, timeout=90):
    """Start n nodes (1..3) under workdir; with connect, nodes 2..n bootstrap to node 1."""
    jsipfs = jsipfs_path()
    nodes = []
    try:
        for i in range(n):
            node = IpfsNode("node%d" % (i + 1), os.path.join(workdir, "node%d" % (i + 1)))
            os.makedirs(node.repo, exist_ok=True)
            node.init(jsipfs)
            if connect and i > 0:
                first = nodes[0]
                node.offline = False
                node.bootstrap = ["/ip4/127.0.0.1/tcp/%d/p2p/%s" % (first.swarm_port,
                                                                   first.peer_id)]
            if connect and i == 0 and n > 1:
                node.offline = False
            nodes.append(node)
        for node in nodes:
            node.start(timeout)
        return nodes
    except BaseException:
        stop_nodes(nodes)
        raise


def stop_nodes(nodes):
    for node in nodes:
        node.stop()


@atexit.register
def _stop_leftovers():
    for node in list(_live):
        node.stop()


def main():
    ap = argparse.ArgumentParser(description="js-ipfs test nodes on loopback")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--connect", action="store_true")
    a = ap.parse_args()
    state = os.path.join(a.dir, "nodes.json")
    if a.action == "start":
        os.makedirs(a.dir, exist_ok=True)
        nodes = start_nodes(a.n, a.dir, a.connect)
        with open(state, "w") as f:
            json.dump([nd.to_json() for nd in nodes], f, indent=2)
        for nd in nodes:
            _live.discard(nd)  # detached: they outlive this command
            print(nd.api_url)
        return 0
    try:
        with open(state) as f:
            entries = json.load(f)
    except OSError:
        return 0
    for e in entries:
        try:
            os.killpg(e["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            try:
                os.kill(e["pid"], 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(e["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.unlink(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
