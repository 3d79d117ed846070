# SPDX-License-Identifier: GPL-2.0-or-later
"""The engine's transport on loopback, for real: TLS verified by default (a self-signed node
fails without its CA, works with ca_bundle), Bearer and Basic auth from a file that must not
be world-readable, connection caps overall and per node, and 429 + Retry-After respected."""
import base64
import os
import subprocess
import time

import pytest
from blocksrv import BlockServer, raw_cid
from faultgw import FaultGateway
from mount import build_binary


def netfetch(args, **kw):
    return subprocess.run([build_binary("tests/support/netfetch")] + args, capture_output=True,
                          **kw)


def blocks(n, size=4096):
    out = {}
    for i in range(n):
        data = os.urandom(size)
        out[raw_cid(data)] = data
    return out


@pytest.mark.timeout(120)
def test_tls__self_signed_node__refused_without_ca__served_with_ca_bundle(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    bl = blocks(3)
    srv = BlockServer(blocks=bl, tls=(cert, key)).start()
    try:
        assert srv.url.startswith("https://")
        r = netfetch(["--rpc", srv.url, "--timeout", "3000"] + list(bl), timeout=60)
        assert r.returncode != 0
        assert r.stdout == b""
        assert srv.requests == 0  # no request got past the handshake
        r = netfetch(["--rpc", srv.url, "--ca-bundle", cert, "--timeout", "3000"] + list(bl),
                     timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == b"".join(bl.values())
        assert srv.requests >= 3
    finally:
        srv.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["bearer", "basic"])
def test_auth_header_from_file__sent__world_readable_file_refused(tmp_path, kind):
    secret = "s3cr3t-token" if kind == "bearer" else "alice:open sesame"
    header = ("Bearer " + secret if kind == "bearer"
              else "Basic " + base64.b64encode(secret.encode()).decode())
    bl = blocks(2)
    srv = BlockServer(blocks=bl, auth=header).start()
    f = tmp_path / "auth"
    f.write_text("%s:%s\n" % (kind, secret))
    try:
        os.chmod(f, 0o600)
        r = netfetch(["--rpc", srv.url, "--auth", str(f), "--timeout", "3000"] + list(bl),
                     timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == b"".join(bl.values())
        assert srv.unauthorized == 0 and header in srv.auth_seen
        # without the header the node refuses: the check is real
        r = netfetch(["--rpc", srv.url, "--timeout", "2000"] + list(bl), timeout=60)
        assert r.returncode != 0 and srv.unauthorized > 0
        # a secret others can read is refused before any request, with a clear reason
        os.chmod(f, 0o644)
        before = srv.requests
        r = netfetch(["--rpc", srv.url, "--auth", str(f)] + list(bl), timeout=60)
        assert r.returncode != 0
        err = r.stderr.decode()
        assert "auth file" in err and "chmod 600" in err and "0644" in err, err
        assert secret not in err
        assert srv.requests == before
    finally:
        srv.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool,per_node,cap", [(8, 3, 3), (2, 0, 2)])
def test_connection_caps__32_parallel_fetches__never_more_sockets(tmp_path, pool, per_node, cap):
    bl = blocks(32)
    srv = BlockServer(blocks=bl, delay=0.05).start()
    try:
        t0 = time.monotonic()
        r = netfetch(["--rpc", srv.url, "--parallel", "32", "--pool-size", str(pool),
                      "--per-node", str(per_node), "--timeout", "20000", "--stall", "500"]
                     + list(bl), timeout=60)
        elapsed = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == b"".join(bl.values())
        print("pool %d, per node %d: at most %d connections open at once, %d requests, %.2f s"
              % (pool, per_node, srv.max_conns, srv.requests, elapsed))
        assert srv.max_conns <= cap
        assert srv.max_conns >= 2  # requests did run in parallel up to the cap
        # requests queued for a connection longer than the stall time were not failed
        assert srv.requests == 32
    finally:
        srv.stop()


@pytest.mark.timeout(120)
def test_429_retry_after__waited_not_hammered(ipfs_node):
    data = os.urandom(1000)
    cid = ipfs_node.add(data, cid_version=1, raw_leaves=True, pin=False)
    gw = FaultGateway(source=ipfs_node).start()
    try:
        gw.set_fault("status", count=2, arg=429)  # each with Retry-After: 1
        t0 = time.monotonic()
        r = netfetch(["--gateway", gw.url, "--timeout", "10000", cid], timeout=60)
        elapsed = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == data
        print("two 429s with Retry-After: 1 -> served after %.2f s in %d requests"
              % (elapsed, gw.requests))
        assert gw.requests == 3
        assert elapsed >= 2.0
    finally:
        gw.stop()
