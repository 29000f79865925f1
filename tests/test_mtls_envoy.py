"""Mesh mTLS end to end with real Envoy sidecars served over ADS (secrets over SDS on the same stream).

Kuma's behaviour pinned here: inbound listeners require a client certificate from the mesh CA with a
``spiffe://<mesh>/`` SAN (``pkg/xds/envoy/tls/v3/tls.go CreateDownstreamTlsContext``), outbound
clusters present the proxy's identity (``client_side_mtls_configurer.go``), and MeshTrafficPermission
renders RBAC (``meshtrafficpermission/xds/legacy_rbac_configurer.go``): a Deny gives 403 on HTTP and
a closed connection on TCP.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import tempfile
from pathlib import Path

import pytest

from meshxds.resources import load_catalog
from meshxds.security.ca import CertificateAuthority, new_root_ca
from meshxds.security.identity import issue_identity
from meshxds.security.issuer import IdentityIssuer
from meshxds.security.state import StateDir
from meshxds.snapshots.builder import Builder
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.envoy import Envoy
from tests.support.net import echo_server, free_port, http_get
from tests.support.poll import wait_until
from tests.test_two_envoys import APP_IP, BACKEND_IP, CLIENT_IP, MESH, ads_server

MTLS = """
---
type: Mesh
name: default
meshServices:
  mode: Exclusive
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
---
type: MeshTrafficPermission
name: allow-client-deny-bad
mesh: default
spec:
  targetRef: {kind: Mesh}
  from:
    - targetRef: {kind: MeshService, name: client}
      default: {action: Allow}
    - targetRef: {kind: MeshService, name: good}
      default: {action: Allow}
    - targetRef: {kind: MeshService, name: bad}
      default: {action: Deny}
"""

pytestmark = pytest.mark.real


def tls_client(ca: CertificateAuthority, spiffe: str, folder: Path) -> ssl.SSLContext:
    """A TLS client holding a workload identity signed by ``ca`` (what a sidecar of that mesh presents)."""
    identity = issue_identity(ca, "default", [spiffe])
    cert, key, trust = folder / f"{abs(hash(spiffe))}.crt", folder / f"{abs(hash(spiffe))}.key", folder / "ca.pem"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    trust.write_bytes(ca.cert_pem)
    ctx = ssl.create_default_context(cafile=str(trust))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we test the server's check of us; the server's SAN is checked by Envoy
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["kuma"])
    return ctx


def tls_get(ctx: ssl.SSLContext, port: int, path: str) -> int:
    conn = http.client.HTTPSConnection(BACKEND_IP, port, context=ctx, timeout=3)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def tcp_exchange(ctx: ssl.SSLContext, port: int) -> bytes:
    """Send an HTTP request through the TCP inbound; the echo app's answer, or b"" when Envoy closes."""
    with socket.create_connection((BACKEND_IP, port), timeout=3) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(f"GET /tcp HTTP/1.0\r\nHost: {BACKEND_IP}\r\n\r\n".encode())
                chunks = []
                while chunk := tls.recv(4096):
                    chunks.append(chunk)
                return b"".join(chunks)
        except (ssl.SSLError, ConnectionResetError):
            return b""


def test_mtls_between_sidecars_and_traffic_permissions(tmp_path: Path) -> None:
    with echo_server(host=APP_IP, body="hello from backend") as app:
        ports = {
            "http_in": free_port(BACKEND_IP),
            "tcp_in": free_port(BACKEND_IP),
            "client_in": free_port(CLIENT_IP),
            "http_out": free_port(CLIENT_IP),
            "tcp_out": free_port(CLIENT_IP),
        }
        text = MESH.format(backend_ip=BACKEND_IP, client_ip=CLIENT_IP, app_ip=APP_IP, app_port=app.port, **ports)
        # The mTLS Mesh replaces the plain one (first document).
        docs = text.split("\n---\n")
        (tmp_path / "mesh.yaml").write_text("\n---\n".join(docs[1:]) + MTLS)
        result = load_catalog([tmp_path / "mesh.yaml"])
        assert result.catalog is not None, result.errors
        state = StateDir(tmp_path / "state")
        snapshots = Builder(IdentityIssuer(state)).build(result.catalog)
        ca, _ = state.builtin_ca("default", "ca-1")
        with ads_server(snapshots) as port:
            nodes = ("default.backend-1", "default.backend-raw-1", "default.client-1")
            envoys = [Envoy(bootstrap_config(n, ads_port=port), tmp_path, n.split(".")[1]) for n in nodes]
            for envoy in envoys:
                envoy.start()
            try:
                for envoy in envoys:
                    envoy.wait_ready()
                backend, _, client = envoys
                # HTTP and TCP through the mTLS hop.
                status, body = wait_until(lambda: http_get(CLIENT_IP, ports["http_out"], "/m"), 15, 0.05, "http")
                assert (status, body) == (200, "hello from backend")
                status, body = wait_until(lambda: http_get(CLIENT_IP, ports["tcp_out"], "/t"), 15, 0.05, "tcp")
                assert status == 200
                cluster = f"default_backend__default_msvc_{ports['http_in']}"
                assert client.stat(f"cluster.{cluster}.ssl.handshake") >= 1
                inbound = f"listener.{BACKEND_IP}_{ports['http_in']}.ssl.handshake"
                assert backend.stat(inbound) >= 1
                # A plaintext client is refused at the inbound port.
                with pytest.raises(OSError):
                    http_get(BACKEND_IP, ports["http_in"], "/plain")
                assert "/plain" not in app.hits
                # Same mesh CA: allowed service passes, denied one gets 403 (HTTP) / closed connection (TCP).
                folder = Path(tempfile.mkdtemp(dir=tmp_path))
                good, bad = (
                    tls_client(ca, "spiffe://default/good", folder),
                    tls_client(ca, "spiffe://default/bad", folder),
                )
                assert tls_get(good, ports["http_in"], "/good") == 200
                assert tls_get(bad, ports["http_in"], "/bad") == 403
                assert "/bad" not in app.hits
                assert b"hello from backend" in tcp_exchange(good, ports["tcp_in"])
                assert tcp_exchange(bad, ports["tcp_in"]) == b""
                # Another mesh's CA (same SPIFFE ID) cannot complete the handshake.
                other = tls_client(new_root_ca("other"), "spiffe://default/good", Path(tempfile.mkdtemp(dir=tmp_path)))
                with pytest.raises((ssl.SSLError, ConnectionResetError)):
                    tls_get(other, ports["http_in"], "/other-mesh")
                assert "/other-mesh" not in app.hits
            finally:
                for envoy in envoys:
                    envoy.stop()


def test_permissive_inbound_takes_plaintext_and_mtls(tmp_path: Path) -> None:
    """inbound_proxy_generator.go PERMISSIVE: plaintext passes without RBAC, Kuma mTLS (ALPN kuma) gets RBAC."""
    with echo_server(host=APP_IP, body="hello from backend") as app:
        port = free_port(BACKEND_IP)
        text = f"""
type: Dataplane
name: backend-1
mesh: default
networking:
  address: {BACKEND_IP}
  inbound:
    - port: {port}
      servicePort: {app.port}
      serviceAddress: {APP_IP}
      tags: {{kuma.io/service: backend, kuma.io/protocol: http}}
""" + MTLS.replace("type: builtin", "type: builtin\n      mode: PERMISSIVE")
        (tmp_path / "mesh.yaml").write_text(text)
        result = load_catalog([tmp_path / "mesh.yaml"])
        assert result.catalog is not None, result.errors
        state = StateDir(tmp_path / "state")
        snapshots = Builder(IdentityIssuer(state)).build(result.catalog)
        ca, _ = state.builtin_ca("default", "ca-1")
        with ads_server(snapshots) as ads_port:
            envoy = Envoy(bootstrap_config("default.backend-1", ads_port=ads_port), tmp_path, "backend").start()
            try:
                envoy.wait_ready()
                status, _ = wait_until(lambda: http_get(BACKEND_IP, port, "/plain"), 15, 0.05, "plaintext")
                assert status == 200 and "/plain" in app.hits
                folder = Path(tempfile.mkdtemp(dir=tmp_path))
                good, bad = (
                    tls_client(ca, "spiffe://default/good", folder),
                    tls_client(ca, "spiffe://default/bad", folder),
                )
                assert tls_get(good, port, "/good") == 200
                assert tls_get(bad, port, "/bad") == 403
                assert envoy.stat(f"listener.{BACKEND_IP}_{port}.ssl.handshake") >= 2
            finally:
                envoy.stop()
