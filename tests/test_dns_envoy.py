"""DNS end to end: a real Envoy sidecar answers DNS queries for the mesh's names, as Kuma's DNSGenerator
configures it (pkg/xds/generator/dns_generator.go, testdata/dns).

The sidecar asks for DNS in its bootstrap (node metadata ``dataplane.dns.port``, as kuma-dp does); the
server gives it the ``kuma:dns`` UDP listener on ``127.0.0.1:<port>``. Names of the services it can
reach resolve to their VIPs (A, and the IPv4-mapped AAAA); a service it cannot reach is NXDOMAIN, and
becomes resolvable once a file edit makes it reachable.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshxds.resources.model import MeshService
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.ads import ServiceThread
from tests.support.dns import AAAA, NOERROR, NXDOMAIN, Answer, resolve
from tests.support.envoy import Envoy
from tests.support.net import free_port
from tests.support.poll import wait_until

pytestmark = pytest.mark.real

MESH = """\
type: Mesh
name: default
meshServices:
  mode: Everywhere
---
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 10.0.1.1
  inbound:
    - port: 8080
      tags:
        kuma.io/service: backend
---
type: Dataplane
name: db-1
mesh: default
networking:
  address: 10.0.2.1
  inbound:
    - port: 5432
      tags:
        kuma.io/service: db
"""

CLIENT = """\
# A transparent proxy that may reach backend only (MeshService and legacy name).
type: Dataplane
name: web-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: {inbound}
      tags:
        kuma.io/service: web
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
    reachableServices: [{reachable}]
    reachableBackends:
      refs: [{refs}]
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Setup:
    service: ServiceThread
    dns_port: int
    client_file: Path
    inbound: int

    def ask(self, name: str, qtype: int = 1) -> Answer:
        return resolve(name, self.dns_port, qtype)

    def vip(self, name: str) -> str:
        def find() -> str:
            catalog = self.service.service.catalog
            assert catalog is not None
            ms: MeshService = next(s for s in catalog.meshes["default"].mesh_services if s.name == name)
            return ms.status.vips[0].ip

        return self.service.call(find)

    def write_client(self, services: list[str]) -> None:
        refs = ", ".join(f"{{kind: MeshService, name: {s}}}" for s in services)
        self.client_file.write_text(CLIENT.format(inbound=self.inbound, reachable=", ".join(services), refs=refs))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    folder = tmp_path / "mesh"
    folder.mkdir()
    (folder / "00-mesh.yaml").write_text(MESH)
    with ServiceThread([folder]) as service:
        s = Setup(service, free_udp_port(), folder / "10-client.yaml", free_port())
        s.write_client(["backend"])
        wait_until(lambda: service.snapshot("default.web-1") is not None, what="web-1 loaded")
        bootstrap = bootstrap_config("default.web-1", ads_port=service.port, dns_port=s.dns_port)
        with Envoy(bootstrap, tmp_path, name="web-1"):
            yield s


def test_envoy_answers_mesh_names(setup: Setup) -> None:
    """A for a reachable MeshService hostname and legacy name (and the mapped AAAA); NXDOMAIN for the rest."""
    s = setup
    backend_vip = s.vip("backend")
    answer = wait_until(lambda: s.ask("backend.svc.mesh.local"), timeout=10, what="the DNS listener answering")
    assert answer == Answer(NOERROR, (backend_vip,))
    assert s.ask("backend.mesh") == Answer(NOERROR, ("240.0.0.1",))  # legacy VIPs: sorted services from 240.0.0.1
    mapped = s.ask("backend.svc.mesh.local", AAAA)
    assert mapped.rcode == NOERROR and len(mapped.addresses) == 1
    v6 = ipaddress.ip_address(mapped.addresses[0])
    assert isinstance(v6, ipaddress.IPv6Address) and str(v6.ipv4_mapped) == backend_vip
    assert s.ask("db.svc.mesh.local").rcode == NXDOMAIN  # exists, but web-1 cannot reach it
    assert s.ask("db.mesh").rcode == NXDOMAIN
    assert s.ask("nothing.svc.mesh.local").rcode == NXDOMAIN


def test_a_file_edit_makes_a_name_resolvable(setup: Setup) -> None:
    """Reachability is the table: add db to the client's reachable services and its names resolve."""
    s = setup
    wait_until(lambda: s.ask("backend.svc.mesh.local").rcode == NOERROR, timeout=10, what="the DNS listener")
    assert s.ask("db.svc.mesh.local").rcode == NXDOMAIN
    s.write_client(["backend", "db"])
    wait_until(lambda: s.ask("db.svc.mesh.local").rcode == NOERROR, timeout=10, what="db resolvable after the edit")
    assert s.ask("db.svc.mesh.local").addresses == (s.vip("db"),)
    assert s.ask("db.mesh").addresses == ("240.0.0.2",)  # legacy VIPs by sorted service: backend, db, web
