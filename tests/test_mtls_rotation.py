"""Identity rotation under load: new SDS secrets reach both sidecars while requests keep flowing.

Kuma rotates a workload certificate after 4/5 of its lifetime (``pkg/xds/secrets/secrets.go``
``ExpiringSoon``); Envoy swaps SDS secrets in place, so established and new connections keep working.
Here ``dpCert.rotation.expiration: 10s`` makes the service rebuild about 8 s after issue; a request
loop through the client sidecar (new connection each time) must not lose a single request.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from meshxds.control.background import Background
from meshxds.control.service import Service
from meshxds.security.state import StateDir
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.envoy import Envoy
from tests.support.net import echo_server, free_port, http_get
from tests.support.poll import wait_until
from tests.test_two_envoys import APP_IP, BACKEND_IP, CLIENT_IP, MESH

ROTATING = """
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
      dpCert:
        rotation:
          expiration: 10s
---
type: MeshTrafficPermission
name: allow-all
mesh: default
spec:
  targetRef: {kind: Mesh}
  from:
    - targetRef: {kind: Mesh}
      default: {action: Allow}
"""

pytestmark = pytest.mark.real


def identity_serial(envoy: Envoy) -> str:
    """The serial of the proxy's own certificate, from Envoy's /certs."""
    certs = json.loads(envoy.get("/certs"))["certificates"]
    chains = [c for entry in certs for c in entry.get("cert_chain", [])]
    return ",".join(sorted({c["serial_number"] for c in chains}))


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_rotation_under_a_request_loop_loses_nothing(tmp_path: Path, delta: bool) -> None:
    with echo_server(host=APP_IP, body="hello from backend") as app:
        ports = {
            "http_in": free_port(BACKEND_IP),
            "tcp_in": free_port(BACKEND_IP),
            "client_in": free_port(CLIENT_IP),
            "http_out": free_port(CLIENT_IP),
            "tcp_out": free_port(CLIENT_IP),
        }
        text = MESH.format(backend_ip=BACKEND_IP, client_ip=CLIENT_IP, app_ip=APP_IP, app_port=app.port, **ports)
        (tmp_path / "mesh").mkdir()
        (tmp_path / "mesh" / "mesh.yaml").write_text("\n---\n".join(text.split("\n---\n")[1:]) + ROTATING)
        state = StateDir(tmp_path / "state")
        bg = Background("rotation")
        service = Service([tmp_path / "mesh"], poll_interval=0.1, state_dir=state.root, secure=True)
        bg.run(service.start("127.0.0.1", 0))
        assert service.tls is not None
        envoys = []
        try:
            for node in ("default.backend-1", "default.client-1"):
                token = state.token_for(node, "1h")
                config = bootstrap_config(
                    node, "127.0.0.1", service.ads.port, delta, token=token, ca_pem=service.tls.ca_pem
                )
                envoys.append(Envoy(config, tmp_path, node.split(".")[1]).start())
            backend, client = envoys
            for envoy in envoys:
                envoy.wait_ready(15.0)
            wait_until(
                lambda: http_get(CLIENT_IP, ports["http_out"], "/warm")[0] == 200, 15, 0.05, what="first request"
            )
            first = (identity_serial(backend), identity_serial(client))
            failures: list[str] = []
            sent = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                sent += 1
                try:
                    status, _ = http_get(CLIENT_IP, ports["http_out"], f"/loop-{sent}")
                    if status != 200:
                        failures.append(f"{sent}: {status}")
                except OSError as exc:
                    failures.append(f"{sent}: {exc}")
                now = (identity_serial(backend), identity_serial(client))
                if all(a != b for a, b in zip(now, first, strict=True)) and sent > 50:
                    break
                time.sleep(0.02)
            rotated = (identity_serial(backend), identity_serial(client))
            assert all(a != b for a, b in zip(rotated, first, strict=True)), "both identities rotated"
            assert failures == [], f"{len(failures)} of {sent} requests failed: {failures[:5]}"
            assert client.stat("listener_manager.lds.update_rejected") == 0
            assert service.builder.issuer.issued >= 4
        finally:
            for envoy in envoys:
                envoy.stop()
            bg.run(service.stop())
            bg.close()
