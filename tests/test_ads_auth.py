"""The authenticated ADS port: TLS with the control plane's CA and Kuma's dataplane tokens.

Kuma's checks and texts (``pkg/xds/auth/universal/authenticator.go``, ``pkg/core/tokens/validator.go``),
with a proper gRPC status instead of Kuma's UNKNOWN (``kuma-security.md`` §7 EXCEED 2), streams closed on
revocation and at expiry (EXCEED 1, kumahq/kuma#3379), and never a byte of configuration before the
token is checked. Real gRPC streams, a real Envoy, the real ``Service``.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from pathlib import Path

import grpc
import jwt
import pytest

from meshxds.control.background import Background
from meshxds.control.service import Service
from meshxds.security.state import StateDir
from meshxds.security.tokens import issue_token
from meshxds.snapshots.snapshot import CLUSTER, LISTENER, SECRET
from meshxds.xds.bootstrap import bootstrap_config
from meshxds.xds.server import SERVICE
from tests.support.discovery import DeltaDiscoveryRequest, DiscoveryRequest, DiscoveryResponse, Node
from tests.support.envoy import Envoy
from tests.support.poll import wait_until

MESH = """
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
---
type: MeshTrafficPermission
name: allow-all
mesh: default
spec:
  targetRef: {kind: Mesh}
  from:
    - targetRef: {kind: Mesh}
      default: {action: Allow}
---
type: Dataplane
name: web-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: 21011
      servicePort: 21012
      tags: {kuma.io/service: web}
---
type: Dataplane
name: web-2
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: 21021
      servicePort: 21022
      tags: {kuma.io/service: web}
"""

pytestmark = pytest.mark.real


class Running:
    def __init__(self, bg: Background, service: Service, state: StateDir) -> None:
        self.bg, self.service, self.state = bg, service, state

    @property
    def port(self) -> int:
        return self.service.ads.port

    @property
    def ca_pem(self) -> bytes:
        assert self.service.tls is not None
        return self.service.tls.ca_pem


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "mesh.yaml").write_text(MESH)
    state = StateDir(tmp_path / "state")
    bg = Background("auth-test")
    service = Service([tmp_path / "mesh"], poll_interval=0.05, state_dir=state.root, secure=True)
    bg.run(service.start("127.0.0.1", 0))
    try:
        yield Running(bg, service, state)
    finally:
        bg.run(service.stop())
        bg.close()


async def first_answer(
    port: int, ca_pem: bytes | None, node: str, token: str | None, delta: bool = False, wait: float = 5.0
) -> tuple[list[bytes], grpc.StatusCode | None, str]:
    """Open one stream, ask for clusters; (responses received, final status, details)."""
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem) if ca_pem is not None else None
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.secure_channel(target, creds) if creds else grpc.aio.insecure_channel(target)
    method = "DeltaAggregatedResources" if delta else "StreamAggregatedResources"
    call = channel.stream_stream(f"/{SERVICE}/{method}")(
        metadata=(("authorization", token),) if token is not None else None, wait_for_ready=False
    )
    got: list[bytes] = []
    try:
        if delta:
            await call.write(bytes(DeltaDiscoveryRequest(node=Node(id=node), type_url=CLUSTER)))
        else:
            await call.write(bytes(DiscoveryRequest(node=Node(id=node), type_url=CLUSTER)))
        while True:
            data = await asyncio.wait_for(call.read(), wait)
            if data is grpc.aio.EOF:
                return got, None, ""
            got.append(data)
    except grpc.aio.AioRpcError as exc:
        return got, exc.code(), exc.details() or ""
    except TimeoutError:
        return got, None, "timeout"
    finally:
        call.cancel()
        await channel.close()


def token_for(r: Running, node: str, **kw: object) -> str:
    mesh, _, name = node.partition(".")
    found = r.state.signing_key(mesh)
    assert found is not None
    args: dict[str, object] = {"valid_for": datetime.timedelta(hours=1)} | kw
    return issue_token(found[1], found[0], name, mesh, **args)  # type: ignore[arg-type]


def test_no_bad_or_foreign_token_gets_no_configuration(running: Running) -> None:
    r = running

    def ask(node: str, token: str | None, delta: bool = False) -> tuple[list[bytes], grpc.StatusCode | None, str]:
        return r.bg.run(first_answer(r.port, r.ca_pem, node, token, delta, wait=2.0))

    got, code, details = ask("default.web-1", None)
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED)
    assert 'no "authorization" metadata' in details
    got, code, details = ask("default.web-1", "garbage", delta=True)
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED) and "could not parse token" in details
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=3)
    got, code, details = ask("default.web-1", token_for(r, "default.web-1", now=past))
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED) and "expired" in details
    got, code, details = ask("default.web-1", token_for(r, "default.web-2"))
    assert (got, code) == ([], grpc.StatusCode.PERMISSION_DENIED)
    assert details == "authentication failed: proxy name from requestor: web-1 is different than in token: web-2"
    other_state = StateDir(r.state.root.parent / "elsewhere")
    found = other_state.signing_key("default")
    assert found is not None
    forged = issue_token(found[1], found[0], "web-1", "default", datetime.timedelta(hours=1))
    got, code, details = ask("default.web-1", forged)
    assert (got, code) == ([], grpc.StatusCode.UNAUTHENTICATED) and "Signature verification failed" in details
    # Plaintext to the TLS port: no stream at all.
    got, code, _ = r.bg.run(first_answer(r.port, None, "default.web-1", token_for(r, "default.web-1"), wait=2.0))
    assert got == [] and code == grpc.StatusCode.UNAVAILABLE
    # The right token: configuration, over SotW and Delta.
    got, code, details = ask("default.web-1", token_for(r, "default.web-1"))
    assert got and DiscoveryResponse.parse(got[0]).type_url == CLUSTER, (code, details)
    got, _, _ = ask("default.web-1", token_for(r, "default.web-1"), delta=True)
    assert got


def test_revoked_and_expiring_tokens_close_live_streams(running: Running) -> None:
    r = running
    token = token_for(r, "default.web-1")

    async def revoke_during_stream() -> tuple[list[bytes], grpc.StatusCode | None, str]:
        task = asyncio.create_task(first_answer(r.port, r.ca_pem, "default.web-1", token, wait=10.0))
        await asyncio.sleep(0.5)
        r.state.revoke("default", jwt.decode(token, options={"verify_signature": False})["jti"])
        return await task

    got, code, details = r.bg.run(revoke_during_stream())
    assert got, "configuration before the revocation"
    assert code == grpc.StatusCode.UNAUTHENTICATED and "token is revoked" in details
    # A token that expires in ~2 s: the stream ends then (Kuma leaves it open).
    short = token_for(r, "default.web-1", valid_for=datetime.timedelta(seconds=2))
    got, code, details = r.bg.run(first_answer(r.port, r.ca_pem, "default.web-1", short, wait=10.0))
    assert got and code == grpc.StatusCode.UNAUTHENTICATED and "token expired" in details


def test_envoy_with_token_and_ca_gets_its_config_and_without_gets_none(running: Running, tmp_path: Path) -> None:
    r = running
    good = bootstrap_config("default.web-1", "127.0.0.1", r.port, token=r.state.token_for("default.web-1", "1h"),
                            ca_pem=r.ca_pem)  # fmt: skip
    bad = bootstrap_config("default.web-2", "127.0.0.1", r.port, token=r.state.token_for("default.web-1", "1h"),
                           ca_pem=r.ca_pem)  # fmt: skip
    none = bootstrap_config("default.web-2", "127.0.0.1", r.port, ca_pem=r.ca_pem, delta=True)
    envoys = [Envoy(good, tmp_path, "good"), Envoy(bad, tmp_path, "bad"), Envoy(none, tmp_path, "none")]
    for envoy in envoys:
        envoy.start()
    try:
        ok, denied, missing = envoys
        ok.wait_ready(15.0)
        assert ok.stat("control_plane.connected_state") == 1
        wait_until(lambda: ok.stat("listener_manager.total_listeners_active") >= 1, 10, what="listener")
        wait_until(lambda: "is different than in token" in denied.tail(200), 10, what="denied log")
        wait_until(lambda: "authorization" in missing.tail(200), 10, what="missing-token log")
        for envoy in (denied, missing):
            assert envoy.stat("cluster_manager.cds.update_success") == 0
            assert envoy.stat("listener_manager.total_listeners_active") == 0
        assert ", 7, authentication failed" in denied.tail(200) or "7, authentication" in denied.tail(200)
    finally:
        for envoy in envoys:
            envoy.stop()


def test_restart_keeps_ca_and_identities(tmp_path: Path) -> None:
    """EXCEED (kuma-security.md §7.7): no re-issue storm after a restart, the mesh CA never changes."""
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "mesh.yaml").write_text(MESH)
    bg = Background("restart-test")
    try:
        seen = []
        for _ in range(2):
            service = Service([tmp_path / "mesh"], state_dir=tmp_path / "state", secure=True)
            bg.run(service.start("127.0.0.1", 0))
            snap = bg.call(lambda s=service: s.cache.get("default.web-1"))  # type: ignore[misc]
            assert snap is not None and set(snap.get(SECRET)) == {
                "identity_cert:secret:default",
                "mesh_ca:secret:default",
            }
            assert snap.get(LISTENER)
            creds = service.builder.credentials
            assert service.tls is not None
            seen.append((service.builder.issuer.issued, creds.meshes["default"].ca_fingerprint,
                         creds.identities["default.web-1"].serial, service.tls.ca_fingerprint))  # fmt: skip
            bg.run(service.stop())
        (issued_1, ca_1, serial_1, cp_1), (issued_2, ca_2, serial_2, cp_2) = seen
        assert issued_1 == 2 and issued_2 == 0
        assert (ca_1, serial_1, cp_1) == (ca_2, serial_2, cp_2)
    finally:
        bg.close()
