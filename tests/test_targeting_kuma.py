"""Agreement with Kuma v2.14.3's MeshHTTPRoute route goldens where they overlap (read from ../shared at test
time, never copied): ``pkg/plugins/policies/meshhttproute/plugin/v1alpha1/testdata/basic-real-meshservice*``
and ``default-meshservice``, inputs from that package's ``plugin_test.go`` (see the goldens' README).

The goldens are the route plugin's output alone, so every route has ``timeout: 0s`` there; ours carry
MeshTimeout's values (Kuma's plugin sets them later), which we leave out of the comparison. Our routes come
over RDS under the same name the golden's inline ``routeConfig`` has.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.model import Dataplane, Mesh, MeshService
from meshxds.resources.policies import MeshHTTPRoute
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.dump import to_json_dict
from tests.support.reference import KUMA_GOLDEN_ROUTES

pytestmark = pytest.mark.kuma_reference

ROUTES = KUMA_GOLDEN_ROUTES / "meshhttproute"
POLICY_SET = ("timeout", "idleTimeout", "retryPolicy")  # what MeshTimeout/MeshRetry add after the route plugin


def golden(name: str) -> dict[str, Any]:
    path = ROUTES / name
    docs = yaml.safe_load(path.read_text())["resources"]
    assert isinstance(docs, list)
    return {d["name"]: d["resource"] for d in docs}


def backend(name: str, vip: str, labels: dict[str, str] | None = None) -> MeshService:
    return MeshService.model_validate(
        {
            "name": name,
            "labels": labels or {},
            "spec": {
                "selector": {"dataplaneTags": {"kuma.io/service": name}},
                "ports": [{"name": "test-port", "port": 80, "targetPort": 8084, "appProtocol": "http"}],
            },
            "status": {"vips": [{"ip": vip}]},
        }
    )


def catalog(services: tuple[MeshService, ...], route: dict[str, Any] | None) -> Catalog:
    """``plugin_test.go``'s fixture: web-01 at 192.168.0.2 with an outbound 127.0.0.1:10001 to backend port 80."""
    tags = {"kuma.io/service": "backend", "kuma.io/protocol": "http", "region": "us"}
    backend_dp = Dataplane.model_validate(
        {
            "name": "backend-1",
            "spec": {"networking": {"address": "192.168.0.4", "inbound": [{"port": 8084, "tags": tags}]}},
        }
    )
    web_networking = {
        "address": "192.168.0.2",
        "inbound": [{"port": 80, "tags": {"kuma.io/service": "web", "kuma.io/protocol": "http"}}],
        "outbound": [{"port": 10001, "backendRef": {"kind": "MeshService", "name": "backend", "port": 80}}],
    }
    web = Dataplane.model_validate({"name": "web-01", "spec": {"networking": web_networking}})
    policies = (MeshHTTPRoute.model_validate({"name": "test-origin", "spec": route}),) if route else ()
    mesh = Mesh.model_validate({"name": "default", "spec": {"skipCreatingInitialPolicies": ["*"]}})
    return Catalog(meshes={"default": MeshView(mesh, (backend_dp, web), services, policies=policies)})


def compare_listener(ours: Catalog, golden_listeners: dict[str, Any]) -> dict[str, Any]:
    """Our outbound listener's RDS routes equal the golden's inline routeConfig, MeshTimeout fields aside."""
    dump = to_json_dict(snapshots_for(ours)["default.web-01"])
    listener = golden_listeners["outbound:127.0.0.1:10001"]
    inline = listener["filterChains"][0]["filters"][0]["typedConfig"]["routeConfig"]
    routes = {r["name"]: r for r in dump["routes"]}
    assert inline["name"] in routes
    mine = {k: v for k, v in routes[inline["name"]].items() if k != "@type"}
    for vh in mine["virtualHosts"]:
        for route in vh["routes"]:
            for key in POLICY_SET:
                route["route"].pop(key, None)
    for vh in inline["virtualHosts"]:
        for route in vh["routes"]:
            assert route["route"].pop("timeout") == "0s"
    assert mine == inline
    ours_listener = next(lis for lis in dump["listeners"] if lis["name"] == "outbound:127.0.0.1:10001")
    assert ours_listener["metadata"] == listener["metadata"]  # kuma.io/unified-name: the outbound KRI
    return dump


def cluster_names(dump: dict[str, Any]) -> set[str]:
    return {c["name"] for c in dump["clusters"] if not c["name"].startswith("localhost")}


def test_basic_real_meshservice_routes_and_clusters() -> None:
    """Entry "basic-real-meshservice" (plugin_test.go:1399): legacy, subset and real backendRefs on one route."""
    listeners = golden("basic-real-meshservice.listeners.golden.yaml")
    clusters = golden("basic-real-meshservice.clusters.golden.yaml")
    rule = lambda paths, ref: {  # noqa: E731
        "matches": [{"path": {"type": "PathPrefix", "value": p}} for p in paths],
        "default": {"backendRefs": [ref]},
    }
    route = {
        "targetRef": {"kind": "Mesh"},
        "to": [
            {
                "targetRef": {"kind": "MeshService", "name": "backend"},
                "rules": [
                    rule(["/v1"], {"kind": "MeshService", "name": "backend", "weight": 100}),
                    rule(["/v2", "/v3"], {"kind": "MeshServiceSubset", "name": "backend", "tags": {"region": "us"}}),
                    rule(["/v4"], {"kind": "MeshService", "name": "backend", "sectionName": "test-port", "port": 80}),
                ],
            }
        ],
    }
    dump = compare_listener(catalog((backend("backend", "10.0.0.1"),), route), listeners)
    assert set(clusters) <= cluster_names(dump)  # backend, backend-c72efb5be46fae6b, default_backend___msvc_80


def test_basic_real_meshservice_labels() -> None:
    """Entry "basic-real-meshservice-labels": backendRefs chosen by labels, each selecting one MeshService."""
    listeners = golden("basic-real-meshservice-labels.listeners.golden.yaml")
    clusters = golden("basic-real-meshservice-labels.clusters.golden.yaml")
    first = backend("backend", "10.0.0.1", {"app": "backend", "version": "first"})
    second = backend("backend-second", "10.0.0.2", {"app": "backend", "version": "second"})

    def rule(path: str, version: str) -> dict[str, Any]:
        labels = {"app": "backend", "version": version}
        ref = {"kind": "MeshService", "labels": labels, "port": 80, "weight": 100}
        return {"matches": [{"path": {"type": "PathPrefix", "value": path}}], "default": {"backendRefs": [ref]}}

    route = {
        "targetRef": {"kind": "Mesh"},
        "to": [
            {
                "targetRef": {"kind": "MeshService", "name": "backend"},
                "rules": [rule("/version1", "first"), rule("/version2", "second")],
            }
        ],
    }
    dump = compare_listener(catalog((first, second), route), listeners)
    assert set(clusters) <= cluster_names(dump)


def test_default_meshservice_without_route() -> None:
    """Entry "default-meshservice": no MeshHTTPRoute gives one catch-all route named by the matches hash."""
    routes = golden("default-meshservice.listeners.golden.yaml")
    inline = next(iter(routes.values()))["filterChains"][0]["filters"][0]["typedConfig"]["routeConfig"]
    [vh] = inline["virtualHosts"]
    [route] = vh["routes"]
    ms = MeshService.model_validate(
        {
            "name": "backend",
            "spec": {
                "selector": {"dataplaneTags": {"kuma.io/service": "backend"}},
                "ports": [{"port": 80, "targetPort": 8084, "appProtocol": "http"}],
            },
            "status": {"vips": [{"ip": "10.0.0.1"}]},
        }
    )
    dump = to_json_dict(snapshots_for(catalog((ms,), None))["default.web-01"])
    mine = next(r for r in dump["routes"] if r["name"] == inline["name"])  # kri_msvc_default___backend_80
    [my_route] = mine["virtualHosts"][0]["routes"]
    assert (my_route["name"], my_route["match"]) == (route["name"], route["match"])
    assert my_route["route"]["cluster"] == route["route"]["cluster"] == "default_backend___msvc_80"
