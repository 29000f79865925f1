"""Snapshot building: one Entry per shared message, content versions, and the consistency check
that keeps an inconsistent snapshot from ever being served."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshxds.resources import Catalog
from meshxds.snapshots.builder import SnapshotError, snapshots_for
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshxds.translators import ProxyResources, ResourceSet, translate
from meshxds.translators import protos as pb
from meshxds.translators.clusters import outbound_cluster
from meshxds.translators.listeners import outbound_listener
from meshxds.translators.outbounds import MESH_SERVICE, Destination, Outbound
from meshxds.translators.routes import (
    CATCH_ALL,
    CATCH_ALL_NAME,
    HttpRoute,
    RouteSettings,
    Split,
    http_route_configuration,
)
from tests.support.snapshots import build

Load = Callable[..., Catalog]

MESH = """
type: Mesh
name: default
meshServices:
  mode: Exclusive
"""


def dp(name: str, address: str, service: str, protocol: str = "http", extra: str = "", tp: bool = True) -> str:
    tp_block = "\n  transparentProxying:\n    redirectPortInbound: 15006\n    redirectPortOutbound: 15001" if tp else ""
    return f"""
---
type: Dataplane
name: {name}
mesh: default
networking:
  address: {address}
  inbound:
    - port: 8080
      tags:
        kuma.io/service: {service}
        kuma.io/protocol: {protocol}{tp_block}{extra}
"""


def test_shared_resources_share_one_entry(catalog_from: Load) -> None:
    snaps = snapshots_for(catalog_from(MESH + dp("a-1", "10.0.0.1", "a") + dp("b-1", "10.0.0.2", "b")))
    a, b = snaps["default.a-1"], snaps["default.b-1"]
    for type_url in (CLUSTER, ENDPOINT, ROUTE):
        present = [
            n for n in ("default_a__default_msvc_8080", "kri_msvc_default_default__a_8080") if n in a.get(type_url)
        ]
        assert present, f"no destination of service a in {type_url}"
        for name in present:
            assert a.get(type_url)[name] is b.get(type_url)[name]
    assert a.get(LISTENER)["outbound:241.0.0.0:8080"] is b.get(LISTENER)["outbound:241.0.0.0:8080"]


def test_versions_are_stable_and_only_the_changed_type_moves(catalog_from: Load) -> None:
    text = MESH + dp("a-1", "10.0.0.1", "a") + dp("b-1", "10.0.0.2", "b")
    first = snapshots_for(catalog_from(text))["default.a-1"]
    again = snapshots_for(catalog_from(text))["default.a-1"]
    assert first.versions == again.versions and first.version == again.version
    moved = snapshots_for(catalog_from(text.replace("10.0.0.2", "10.0.0.3")))["default.a-1"]
    changed = {t for t in first.versions if first.versions[t] != moved.versions[t]}
    assert changed == {ENDPOINT}


def test_two_explicit_outbounds_on_one_port_keep_the_first(catalog_from: Load) -> None:
    outbounds = """
  outbound:
    - port: 9000
      tags:
        kuma.io/service: a
    - port: 9000
      tags:
        kuma.io/service: b"""
    text = MESH + dp("a-1", "10.0.0.1", "a") + dp("b-1", "10.0.0.2", "b")
    text += dp("c-1", "10.0.0.3", "c", extra=outbounds, tp=False)
    snap = snapshots_for(catalog_from(text))["default.c-1"]
    assert set(snap.get(CLUSTER)) == {"localhost:8080", "a"}


def test_duplicate_names_are_refused() -> None:
    one, two = (outbound_listener(Outbound("127.0.0.1", 80, _dest("tcp")), transparent=False) for _ in range(2))
    with pytest.raises(SnapshotError, match=r"m\.p: two different listeners named 'outbound:127.0.0.1:80'"):
        build({"m.p": _resources(listeners=(one, two), clusters=(outbound_cluster(_dest("tcp")),))})


def _dest(protocol: str) -> Destination:
    return Destination(MESH_SERVICE, "svc", "svc", protocol, "kri_msvc_m___svc_80", "kri_msvc_m___svc_")


def _resources(**kw: tuple[object, ...]) -> ProxyResources:
    return ProxyResources("m.p", ResourceSet(), ResourceSet(**kw))


def test_eds_cluster_without_its_cla_is_refused() -> None:
    with pytest.raises(SnapshotError, match=r"m\.p: cluster 'svc' needs ClusterLoadAssignment 'svc'"):
        build({"m.p": _resources(clusters=(outbound_cluster(_dest("tcp")),))})


def test_tcp_proxy_to_a_missing_cluster_is_refused() -> None:
    listener = outbound_listener(Outbound("127.0.0.1", 80, _dest("tcp")), transparent=False)
    with pytest.raises(SnapshotError, match=r"listener 'outbound:127\.0\.0\.1:80' needs cluster 'svc'"):
        build({"m.p": _resources(listeners=(listener,))})


def route_configuration(outbound: Outbound) -> pb.RouteConfiguration:
    """The outbound's default route: the catch-all to its own cluster."""
    dest = outbound.destination
    route = HttpRoute(CATCH_ALL_NAME, CATCH_ALL, (), (Split(dest, 100),))
    return http_route_configuration(dest, [route], RouteSettings())


def test_http_listener_needs_its_route_and_the_route_its_cluster() -> None:
    outbound = Outbound("127.0.0.1", 80, _dest("http"))
    listener = outbound_listener(outbound, transparent=False)
    with pytest.raises(SnapshotError, match=r"needs RouteConfiguration 'kri_msvc_m___svc_80'"):
        build({"m.p": _resources(listeners=(listener,))})
    with pytest.raises(SnapshotError, match=r"route 'kri_msvc_m___svc_80' needs cluster 'svc'"):
        build({"m.p": _resources(listeners=(listener,), routes=(route_configuration(outbound),))})
    complete = _resources(
        clusters=(outbound_cluster(_dest("http")),),
        endpoints=(pb.ClusterLoadAssignment(cluster_name="svc"),),
        listeners=(listener,),
        routes=(route_configuration(outbound),),
    )
    assert set(build({"m.p": complete})["m.p"].get(ROUTE)) == {"kri_msvc_m___svc_80"}


def test_every_translated_proxy_passes_the_check(catalog_from: Load) -> None:
    text = MESH + dp("a-1", "10.0.0.1", "a") + dp("b-1", "10.0.0.2", "b", protocol="tcp")
    catalog = catalog_from(text)
    assert set(snapshots_for(catalog)) == set(translate(catalog)) == {"default.a-1", "default.b-1"}
