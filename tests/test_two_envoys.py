"""End to end: two real Envoy sidecars configured by meshxds carry an HTTP request from a client
app through both sidecars to an echo server behind the backend's sidecar.

The client has no transparent proxy, so it uses explicit outbounds (as Kuma universal does):
one to the backend's http MeshService port (HCM + RDS route) and one to its tcp port
(tcp_proxy). Run once with the snapshots turned into static bootstraps (proves the dump is
real Envoy config) and once served by the ADS server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshxds.resources import load_catalog
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.bootstrap import bootstrap_config
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import AdsServer
from tests.support.envoy import Envoy
from tests.support.net import echo_server, free_port, http_get
from tests.support.poll import wait_until
from tests.support.snapshots import static_bootstrap

CLIENT_IP = "127.0.0.4"
BACKEND_IP = "127.0.0.2"
APP_IP = "127.0.0.3"

MESH = """
type: Mesh
name: default
meshServices:
  mode: Exclusive
---
type: Dataplane
name: backend-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - port: {http_in}
      servicePort: {app_port}
      serviceAddress: {app_ip}
      tags:
        kuma.io/service: backend
        kuma.io/protocol: http
---
type: Dataplane
name: backend-raw-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - port: {tcp_in}
      servicePort: {app_port}
      serviceAddress: {app_ip}
      tags:
        kuma.io/service: backend-raw
---
type: Dataplane
name: client-1
mesh: default
networking:
  address: {client_ip}
  inbound:
    - port: {client_in}
      tags:
        kuma.io/service: client
  outbound:
    - address: {client_ip}
      port: {http_out}
      backendRef:
        kind: MeshService
        name: backend
        port: {http_in}
    - address: {client_ip}
      port: {tcp_out}
      backendRef:
        kind: MeshService
        name: backend-raw
        port: {tcp_in}
"""


@dataclass(frozen=True)
class Setup:
    snapshots: dict[str, Snapshot]
    http_in: int
    http_out: int
    tcp_out: int


def make_setup(folder: Path, app_port: int) -> Setup:
    ports = {
        "http_in": free_port(BACKEND_IP),
        "tcp_in": free_port(BACKEND_IP),
        "client_in": free_port(CLIENT_IP),
        "http_out": free_port(CLIENT_IP),
        "tcp_out": free_port(CLIENT_IP),
    }
    text = MESH.format(backend_ip=BACKEND_IP, client_ip=CLIENT_IP, app_ip=APP_IP, app_port=app_port, **ports)
    (folder / "mesh.yaml").write_text(text)
    result = load_catalog([folder])
    assert result.catalog is not None, result.errors
    return Setup(snapshots_for(result.catalog), ports["http_in"], ports["http_out"], ports["tcp_out"])


def assert_request_crosses_both_sidecars(port: int, hits: list[str], path: str) -> None:
    status, body = wait_until(lambda: http_get(CLIENT_IP, port, path), 10.0, 0.02, f"GET {path} via {port}")
    assert (status, body) == (200, "hello from backend")
    assert path in hits


def test_static_snapshots_route_through_two_sidecars(tmp_path: Path) -> None:
    with echo_server(host=APP_IP, body="hello from backend") as app:
        setup = make_setup(tmp_path, app.port)
        backend = Envoy(static_bootstrap(setup.snapshots["default.backend-1"]), tmp_path, "backend")
        raw = Envoy(static_bootstrap(setup.snapshots["default.backend-raw-1"]), tmp_path, "backend-raw")
        client = Envoy(static_bootstrap(setup.snapshots["default.client-1"]), tmp_path, "client")
        with backend, raw, client:
            assert_request_crosses_both_sidecars(setup.http_out, app.hits, "/via-http")
            assert_request_crosses_both_sidecars(setup.tcp_out, app.hits, "/via-tcp")
            # Both sidecars counted it: client on the MeshService cluster, backend on the app (alt stat name).
            cluster = f"default_backend__default_msvc_{setup.http_in}"
            assert client.stat(f"cluster.{cluster}.upstream_rq_total") >= 1
            assert backend.stat(f"cluster.localhost_{app.port}.upstream_rq_total") >= 1


@contextmanager
def ads_server(snapshots: dict[str, Snapshot]) -> Iterator[int]:
    """C's ADS server on its own event loop thread, serving ``snapshots``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cache = SnapshotCache()
    server = AdsServer(cache)

    async def start() -> int:
        cache.replace_all(snapshots)
        return await server.start("127.0.0.1", 0)

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_ads_served_snapshots_route_through_two_sidecars(tmp_path: Path) -> None:
    with echo_server(host=APP_IP, body="hello from backend") as app:
        setup = make_setup(tmp_path, app.port)
        with ads_server(setup.snapshots) as port:
            envoys = [
                Envoy(bootstrap_config(node, ads_port=port), tmp_path, node.split(".")[1])
                for node in ("default.backend-1", "default.backend-raw-1", "default.client-1")
            ]
            for envoy in envoys:
                envoy.start()
            try:
                for envoy in envoys:
                    envoy.wait_ready()
                    assert envoy.warming_clusters() == {}
                    assert envoy.stat("cluster_manager.cds.update_rejected") == 0
                    assert envoy.stat("listener_manager.lds.update_rejected") == 0
                assert_request_crosses_both_sidecars(setup.http_out, app.hits, "/ads-http")
                assert_request_crosses_both_sidecars(setup.tcp_out, app.hits, "/ads-tcp")
            finally:
                for envoy in envoys:
                    envoy.stop()
