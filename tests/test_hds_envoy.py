"""Service probes end to end: a real Envoy sidecar probes its app over HDS and its endpoint follows.

Kuma on universal (pkg/hds/tracker/callbacks.go, pkg/hds/tracker/healthcheck_generator.go,
dataplane_manager.go ``setHealth``): an inbound with a ``serviceProbe`` starts NotReady; its sidecar,
bootstrapped with ``hds_config`` on the ADS server, is told to TCP-check the app and reports; the
inbound becomes Ready, its endpoint enters every client's ClusterLoadAssignment and the MeshService
counts it healthy. Stop the app: the next report takes it out again. No file is edited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from meshxds.resources.model import MeshService
from meshxds.translators.health import HdsSettings
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.ads import ServiceThread
from tests.support.envoy import Envoy
from tests.support.net import EchoServer, free_port
from tests.support.poll import wait_until

pytestmark = pytest.mark.real

CLUSTER = "default_backend__default_msvc_80"  # the client's cluster of MeshService backend (zone default), port 80
# Kuma's defaults report every 5 s; the test asks for quicker reports so it runs in seconds.
SETTINGS = HdsSettings(
    interval=timedelta(seconds=0.2), check_interval=timedelta(seconds=0.1), refresh_interval=timedelta(seconds=1)
)

MESH = """\
type: Mesh
name: default
meshServices:
  mode: Everywhere
---
type: MeshService
name: backend
mesh: default
spec:
  selector:
    dataplaneTags:
      kuma.io/service: backend
  ports:
    - port: 80
      targetPort: http
      appProtocol: http
"""

DATAPLANES = """\
# backend-1 is probed (its app can go away); backend-2 has no probe and stays Ready.
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - name: http
      port: {probed_port}
      servicePort: {probed_app}
      serviceProbe:
        interval: 0.1s
        tcp: {{}}
      tags:
        kuma.io/service: backend
        kuma.io/protocol: http
---
type: Dataplane
name: backend-2
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - name: http
      port: {plain_port}
      servicePort: {plain_app}
      tags:
        kuma.io/service: backend
        kuma.io/protocol: http
---
type: Dataplane
name: web-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: {web_port}
      tags:
        kuma.io/service: web
  outbound:
    - port: {outbound_port}
      backendRef:
        kind: MeshService
        name: backend
        port: 80
"""


@dataclass
class Topology:
    service: ServiceThread
    client: Envoy
    probed_app: EchoServer
    probed: str  # backend-1's endpoint, ip:port
    plain: str  # backend-2's endpoint

    def hosts(self) -> list[str]:
        return self.client.hosts(CLUSTER)

    def backend(self) -> MeshService:
        def find() -> MeshService:
            catalog = self.service.service.catalog
            assert catalog is not None
            return next(ms for ms in catalog.meshes["default"].mesh_services if ms.name == "backend")

        return self.service.call(find)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    ports = {
        k: free_port() for k in ("probed_port", "probed_app", "plain_port", "plain_app", "web_port", "outbound_port")
    }
    folder = tmp_path / "mesh"
    folder.mkdir()
    (folder / "00-mesh.yaml").write_text(MESH)
    (folder / "10-dataplanes.yaml").write_text(DATAPLANES.format(**ports))
    with (
        EchoServer(port=ports["probed_app"], body="backend-1") as probed_app,
        EchoServer(port=ports["plain_app"], body="backend-2"),
        ServiceThread([folder], hds=SETTINGS) as service,
    ):
        envoys = [
            Envoy(bootstrap_config(f"default.{name}", ads_port=service.port), tmp_path, name=name)
            for name in ("backend-1", "backend-2", "web-1")
        ]
        try:
            for envoy in envoys:
                envoy.start()
            yield Topology(
                service,
                envoys[2],
                probed_app,
                f"127.0.0.1:{ports['probed_port']}",
                f"127.0.0.1:{ports['plain_port']}",
            )
        finally:
            for envoy in envoys:
                envoy.stop()


def test_probed_endpoint_follows_its_app(topology: Topology) -> None:
    """NotReady until the first report; stop the app → out of the client's CLA and the MeshService's
    healthy count; start it again → back in. The files are never touched."""
    t = topology
    # The probed inbound starts NotReady and is Ready once its sidecar's first report arrives.
    wait_until(
        lambda: t.hosts() == sorted([t.probed, t.plain]), timeout=15, what="both endpoints after the first report"
    )
    assert t.service.service.hds.reports > 0
    dpp = t.backend().status.dataplane_proxies
    assert dpp is not None and (dpp.healthy, dpp.total) == (2, 2)

    t.probed_app.stop()
    wait_until(lambda: t.hosts() == [t.plain], timeout=15, what="backend-1 out of web-1's CLA")
    dpp = t.backend().status.dataplane_proxies
    assert dpp is not None and (dpp.healthy, dpp.total) == (1, 2)

    t.probed_app.start()  # the same port again
    wait_until(lambda: t.hosts() == sorted([t.probed, t.plain]), timeout=15, what="backend-1 back in web-1's CLA")
    dpp = t.backend().status.dataplane_proxies
    assert dpp is not None and dpp.healthy == 2


def test_probed_inbound_without_a_sidecar_stays_not_ready(tmp_path: Path) -> None:
    """setHealth: with no report (no sidecar connected over HDS) a probed inbound is NotReady: no endpoint."""
    folder = tmp_path / "mesh"
    folder.mkdir()
    ports = {
        k: free_port() for k in ("probed_port", "probed_app", "plain_port", "plain_app", "web_port", "outbound_port")
    }
    (folder / "00-mesh.yaml").write_text(MESH)
    (folder / "10-dataplanes.yaml").write_text(DATAPLANES.format(**ports))
    with ServiceThread([folder], hds=SETTINGS) as service:
        snap = service.snapshot("default.web-1")
        assert snap is not None
        cla = snap.resources["type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"][CLUSTER].message
        addresses = [
            f"{e.endpoint.address.socket_address.address}:{e.endpoint.address.socket_address.port_value}"
            for group in cla.endpoints
            for e in group.lb_endpoints
        ]
        assert addresses == [f"127.0.0.1:{ports['plain_port']}"]
