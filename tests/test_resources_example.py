"""The example mesh keeps what the demo and the other tests rely on."""

from __future__ import annotations

import ipaddress

from meshxds.resources import load_catalog
from meshxds.resources.model import Dataplane
from tests.resources.util import EXAMPLE


def test_example_has_what_the_demo_needs() -> None:
    result = load_catalog([EXAMPLE])
    assert result.catalog is not None and not result.errors
    view = result.catalog.meshes["default"]
    assert view.mesh.spec.mode.value == "Everywhere"
    dps: dict[str, Dataplane] = {dp.name: dp for dp in view.dataplanes}
    assert len(dps) >= 6
    addresses = [dp.networking.address for dp in dps.values()]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    for dp in dps.values():
        for inbound in dp.networking.inbound:
            assert inbound.service_port is not None and inbound.service_port != inbound.port
            assert inbound.service_address == dp.networking.address
    web1 = dps["web-1"]
    assert web1.networking.transparent_proxying is None
    refs = [o.backend_ref for o in web1.networking.outbound if o.backend_ref]
    assert [(r.kind, r.name, r.port) for r in refs] == [("MeshService", "backend", 80)]
    assert [o.tags for o in web1.networking.outbound if o.tags] == [{"kuma.io/service": "redis"}]
    others = [dp for name, dp in dps.items() if name != "web-1"]
    assert all(dp.networking.transparent_proxying is not None for dp in others)
    tps = [dp.networking.transparent_proxying for dp in others if dp.networking.transparent_proxying]
    assert any(tp.reachable_backends is not None for tp in tps)
    assert any(tp.reachable_services for tp in tps)
    assert any(not i.healthy for dp in dps.values() for i in dp.networking.inbound)
    services = {ms.name: ms for ms in view.mesh_services}
    assert len(services) >= 3
    assert any(len(ms.spec.ports) >= 2 for ms in services.values())
    assert any(isinstance(p.target_port, str) for ms in services.values() for p in ms.spec.ports)
    assert any("port conflict" in w.message for w in result.warnings)
    http = [ms for ms in services.values() if any(p.app_protocol == "http" for p in ms.spec.ports)]
    assert len(http) >= 2
