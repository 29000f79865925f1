"""Translator rules the golden cases don't isolate: protocol folding, reachable refs by labels and
to MeshMultiZoneServices, locality priorities, endpoint ordering, and sharing of resources."""

from __future__ import annotations

from collections.abc import Callable

from meshxds.resources import Catalog
from meshxds.translators import ProxyResources, translate
from meshxds.translators.dataplanes import common_protocol
from meshxds.translators.endpoints import locality
from meshxds.translators.outbounds import legacy_vips

Load = Callable[..., Catalog]

TP = """
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001"""


def dataplane(name: str, address: str, service: str, port: int = 8080, extra: str = "", mesh: str = "default") -> str:
    return f"""
---
type: Dataplane
name: {name}
mesh: {mesh}
networking:
  address: {address}
  inbound:
    - port: {port}
      tags:
        kuma.io/service: {service}
        kuma.io/protocol: http{TP}{extra}
"""


def mesh(mode: str, extra: str = "") -> str:
    return f"type: Mesh\nname: default\nmeshServices:\n  mode: {mode}\n{extra}"


def names(res: ProxyResources) -> dict[str, list[str]]:
    return {
        "clusters": sorted(c.name for c in res.clusters),
        "endpoints": sorted(e.cluster_name for e in res.endpoints),
        "listeners": sorted(lis.name for lis in res.listeners),
        "routes": sorted(r.name for r in res.routes),
    }


def cla(res: ProxyResources, cluster: str) -> list[tuple[str | None, int, list[str]]]:
    """(zone, priority, [address:port]) per locality group, in order."""
    [assignment] = [e for e in res.endpoints if e.cluster_name == cluster]
    out = []
    for g in assignment.endpoints:
        hosts = [e.endpoint.address.socket_address for e in g.lb_endpoints]
        out.append(
            (g.locality.zone if g.locality else None, g.priority, [f"{h.address}:{h.port_value}" for h in hosts])
        )
    return out


def test_common_protocol_follows_kuma_protocol_stacks() -> None:
    assert common_protocol(["http", "http"]) == "http"
    assert common_protocol(["grpc", "http2"]) == "http2"
    assert common_protocol(["http", "http2"]) == "tcp"
    assert common_protocol(["http", ""]) == "tcp"
    assert common_protocol([]) == "tcp"


def test_legacy_vips_are_sorted_by_service_and_stable(catalog_from: Load) -> None:
    text = mesh("Disabled") + dataplane("z-1", "10.0.0.1", "zeta") + dataplane("a-1", "10.0.0.2", "alpha")
    catalog = catalog_from(text)
    assert legacy_vips(catalog.meshes["default"].dataplanes) == {"alpha": "240.0.0.1", "zeta": "240.0.0.2"}
    listeners = names(translate(catalog)["default.z-1"])["listeners"]
    assert "outbound:240.0.0.1:80" in listeners and "outbound:240.0.0.2:80" in listeners


def test_reachable_backends_by_labels_and_to_a_multizone_service(catalog_from: Load) -> None:
    refs = """
    reachableBackends:
      refs:
        - kind: MeshService
          labels:
            team: pay
        - kind: MeshMultiZoneService
          name: shop"""
    text = (
        mesh("Exclusive")
        + dataplane("client-1", "10.0.0.1", "client", extra=refs)
        + dataplane("pay-1", "10.0.0.2", "pay")
        + dataplane("other-1", "10.0.0.3", "other")
        + """
---
type: MeshService
name: billing
mesh: default
labels:
  team: pay
spec:
  selector:
    dataplaneTags:
      kuma.io/service: pay
  ports:
    - port: 80
      targetPort: 8080
      appProtocol: http
---
type: MeshMultiZoneService
name: shop
mesh: default
spec:
  selector:
    meshService:
      matchLabels:
        kuma.io/display-name: other
  ports:
    - port: 8080
      appProtocol: http
"""
    )
    res = translate(catalog_from(text))["default.client-1"]
    assert [c for c in names(res)["clusters"] if not c.startswith(("localhost", "outbound:passthrough:"))] == [
        "default_billing__default_msvc_80",
        "default_shop___mzsvc_8080",
    ]
    assert cla(res, "default_shop___mzsvc_8080") == [("default", 0, ["10.0.0.3:8080"])]


def test_transparent_proxy_with_explicit_backend_refs_only_gets_those(catalog_from: Load) -> None:
    outbound = """
  outbound:
    - port: 9999
      backendRef:
        kind: MeshService
        name: b
        port: 8080"""
    text = (
        mesh("Exclusive")
        + dataplane("client-1", "10.0.0.1", "client", extra=outbound)
        + dataplane("a-1", "10.0.0.2", "a")
        + dataplane("b-1", "10.0.0.3", "b")
    )
    res = translate(catalog_from(text))["default.client-1"]
    assert [c for c in names(res)["clusters"] if not c.startswith(("localhost", "outbound:passthrough:"))] == [
        "default_b__default_msvc_8080"
    ]


def test_locality_aware_mesh_puts_other_zones_at_priority_one() -> None:
    """Kuma's ``GetLocality`` (pkg/xds/topology/outbound.go): priority 1 only for another zone and only when aware."""
    assert locality("east", "west", True) == ("west", 1)
    assert locality("east", "west", False) == ("west", 0)
    assert locality("east", "east", True) == ("east", 0)
    assert locality("east", None, True) == (None, 0)


def test_a_local_inbound_cannot_claim_another_zone(catalog_from: Load) -> None:
    """dataplane_manager.go ``setInboundsClusterTag`` overwrites ``kuma.io/zone`` with the zone's own name."""
    west = """
    - port: 8081
      tags:
        kuma.io/service: api
        kuma.io/zone: west"""
    base = dataplane("api-1", "10.0.0.9", "api") + dataplane("api-2", "10.0.0.10", "api")
    routing = "routing:\n  localityAwareLoadBalancing: true\n"
    text = mesh("Disabled", routing) + base + dataplane("api-3", "10.0.0.11", "api").replace(TP, west + TP)
    res = translate(catalog_from(text, zone="east"))["default.api-1"]
    # Hosts sort by address (as strings, like Kuma); api-3's second inbound is stamped east too.
    assert cla(res, "api") == [("east", 0, ["10.0.0.10:8080", "10.0.0.11:8080", "10.0.0.11:8081", "10.0.0.9:8080"])]


def test_shared_destinations_are_the_same_objects_for_every_proxy(catalog_from: Load) -> None:
    text = mesh("Exclusive") + "".join(dataplane(f"c-{i}", f"10.0.0.{i}", "client") for i in range(1, 4))
    text += dataplane("api-1", "10.0.1.1", "api")
    proxies = translate(catalog_from(text))
    first, *others = (proxies[f"default.c-{i}"] for i in range(1, 4))
    for other in others:
        # Same outbound selection → the very same tuples' members (clusters, CLAs, listeners, routes).
        assert all(a is b for a, b in zip(first.endpoints, other.endpoints, strict=True))
        assert all(a is b for a, b in zip(first.routes, other.routes, strict=True))
        assert [id(c) for c in first.clusters[1:]] == [id(c) for c in other.clusters[1:]]
        assert first.listeners[0] is not other.listeners[0]  # inbound listeners are per proxy
    api = proxies["default.api-1"]
    shared = {id(c) for c in first.clusters if not c.name.startswith("outbound:passthrough:")}
    shared &= {id(c) for c in api.clusters}
    # Both MeshService clusters; the localhost:8080 app clusters differ: the app is at each proxy's own address
    # (the shared outbound:passthrough clusters of transparent proxies are left out).
    assert len(shared) == 2


def test_a_destination_without_endpoints_still_gets_an_empty_cla(catalog_from: Load) -> None:
    text = (
        mesh("Exclusive")
        + dataplane("c-1", "10.0.0.1", "client")
        + """
---
type: MeshService
name: nobody
mesh: default
spec:
  selector:
    dataplaneTags:
      kuma.io/service: nobody
  ports:
    - port: 80
      targetPort: 80
"""
    )
    res = translate(catalog_from(text))["default.c-1"]
    assert "default_nobody__default_msvc_80" in names(res)["clusters"]
    assert cla(res, "default_nobody__default_msvc_80") == []


def test_an_unresolvable_backend_ref_gives_no_outbound(catalog_from: Load) -> None:
    outbound = """
  outbound:
    - port: 9999
      backendRef:
        kind: MeshService
        name: missing
        port: 80"""
    text = mesh("Exclusive") + dataplane("c-1", "10.0.0.1", "client", extra=outbound).replace(TP, "")
    res = translate(catalog_from(text))["default.c-1"]
    assert names(res)["listeners"] == ["inbound:10.0.0.1:8080"]


def test_clashing_vips_keep_the_first_service_instead_of_failing_the_mesh(catalog_from: Load) -> None:
    services = "".join(
        f"""
---
type: MeshService
name: {name}
mesh: default
spec:
  selector:
    dataplaneTags:
      kuma.io/service: {name}
  ports:
    - port: 80
      targetPort: 8080
status:
  vips:
    - ip: 241.9.9.9
"""
        for name in ("first", "second")
    )
    text = mesh("Exclusive") + dataplane("c-1", "10.0.0.1", "client") + services
    res = translate(catalog_from(text))["default.c-1"]
    assert "outbound:241.9.9.9:80" in names(res)["listeners"]
    assert "default_first__default_msvc_80" in names(res)["clusters"]
    assert "default_second__default_msvc_80" not in names(res)["clusters"]
