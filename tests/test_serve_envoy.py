"""The real pipeline against real Envoy sidecars: files → meshxds serve → ADS → Envoy, SotW and Delta.

One demo topology per flavour (a copy of the example mesh, six sidecars, identity apps); the
tests in this module run in order on it and edit its files like a user would.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.cli.main import main
from meshxds.demo.loopback import EchoServer, http_get, proxied_get
from meshxds.demo.runner import Demo
from meshxds.demo.sidecar import Envoy
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot
from tests.support.example import private_copy
from tests.support.poll import wait_until
from tests.support.steady import SteadyClient

PUSH_DEADLINE = 1.0  # the promise: an edit reaches Envoy within a second


@dataclass
class Mesh:
    demo: Demo
    folder: Path
    octet: int
    latencies: dict[str, float] = field(default_factory=dict)

    def ip(self, last: int) -> str:
        return f"127.{self.octet}.0.{last}"

    def envoy(self, name: str) -> Envoy:
        return self.demo.envoys[f"default.{name}"]

    def snapshot(self, name: str) -> Snapshot:
        return self.demo.snapshots()[f"default.{name}"]

    def edit(self, file: str, old: str, new: str) -> float:
        path = self.folder / file
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        return time.monotonic()


@pytest.fixture(scope="module", params=["sotw", "delta"])
def mesh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    folder = tmp_path_factory.mktemp(f"mesh-{request.param}")
    octet = private_copy(folder)
    demo = Demo([str(folder)], request.param == "delta", tmp_path_factory.mktemp("envoy"), poll_interval=0.02)
    try:
        assert demo.start()
        yield Mesh(demo, folder, octet)
    finally:
        demo.close()


def differences(envoy: Envoy, snap: Snapshot) -> list[str]:
    """How Envoy's config differs from the snapshot: names, versions, endpoints, warming (empty = same)."""
    out: list[str] = []
    dump, status = envoy.config_dump(), envoy.clusters()
    clusters = envoy.dynamic_clusters(dump)
    if set(clusters) != set(snap.get(CLUSTER)):
        out.append(f"clusters {sorted(clusters)} != {sorted(snap.get(CLUSTER))}")
    if envoy.warming_clusters(dump):
        out.append(f"warming {sorted(envoy.warming_clusters(dump))}")
    # SotW: the last CDS response Envoy accepted carries the snapshot's version (a cluster's own
    # version_info is the response that last changed it); Delta: every cluster has its own version.
    accepted = envoy.dump_section("ClustersConfigDump", dump).get("version_info")
    for name, dumped in clusters.items():
        entry = snap.get(CLUSTER).get(name)
        if entry is not None and snap.versions[CLUSTER] != accepted and dumped["version_info"] != entry.version:
            out.append(f"cluster {name} version {dumped['version_info']} (CDS {accepted})")
    listeners, routes = envoy.dynamic_listeners(dump), envoy.dynamic_routes(dump)
    if set(listeners) != set(snap.get(LISTENER)):
        out.append(f"listeners {sorted(listeners)} != {sorted(snap.get(LISTENER))}")
    if set(routes) != set(snap.get(ROUTE)):
        out.append(f"routes {sorted(routes)} != {sorted(snap.get(ROUTE))}")
    claims = envoy.dynamic_endpoints(dump)
    for name, entry in snap.get(ENDPOINT).items():
        want = sorted(_hosts(entry.message))
        got = sorted(_hosts_json(claims.get(name, {})))
        if got != want:
            out.append(f"CLA {name}: {got} != {want}")
        elif envoy.hosts(name, status) != want:
            out.append(f"/clusters {name}: {envoy.hosts(name, status)} != {want}")
    return out


def converged(envoy: Envoy, snap: Snapshot) -> bool:
    return not differences(envoy, snap)


def _hosts(cla: Any) -> list[str]:
    return [
        f"{lb.endpoint.address.socket_address.address}:{lb.endpoint.address.socket_address.port_value}"
        for group in cla.endpoints
        for lb in group.lb_endpoints
    ]


def _hosts_json(cla: dict[str, Any]) -> list[str]:
    out = []
    for group in cla.get("endpoints", []):
        for lb in group.get("lb_endpoints", []):
            sa = lb["endpoint"]["address"]["socket_address"]
            out.append(f"{sa['address']}:{sa['port_value']}")
    return out


def assert_converges(
    mesh: Mesh, names: list[str], start: float, what: str, deadline: float = PUSH_DEADLINE, loaded: Any = None
) -> None:
    """Every named sidecar holds its current snapshot within ``deadline`` of ``start``.

    ``loaded``: a check on the service's catalog that proves the edit was loaded (waited for first).
    """
    if loaded is not None:
        wait_until(lambda: mesh.demo.catalog is not None and loaded(mesh.demo.catalog), deadline, what=what)
    for name in names:
        envoy = mesh.envoy(name)
        try:
            wait_until(lambda e=envoy, n=name: converged(e, mesh.snapshot(n)), deadline, what=what)  # type: ignore[misc]
        except AssertionError:
            raise AssertionError(f"{name} after {what}: {differences(envoy, mesh.snapshot(name))}") from None
    mesh.latencies[what] = time.monotonic() - start


def test_config_dump_and_clusters_match_every_snapshot(mesh: Mesh) -> None:
    for node in mesh.demo.envoys:
        name = node.split(".", 1)[1]
        assert_converges(mesh, [name], time.monotonic(), "start", deadline=5.0)
        envoy = mesh.envoy(name)
        assert envoy.stat("cluster_manager.cds.update_rejected") == 0
        assert envoy.stat("listener_manager.lds.update_rejected") == 0
        cache = mesh.demo.service.cache
        status = mesh.demo.background.call(functools.partial(cache.node_status, node))
        assert status.nacks == 0 and status.streams == 1
    # Cluster content, not just names: Envoy's JSON of a cluster equals the snapshot's message.
    cluster = mesh.envoy("web-1").dynamic_clusters()["default_backend__default_msvc_80"]["cluster"]
    entry = mesh.snapshot("web-1").get(CLUSTER)["default_backend__default_msvc_80"]
    body = {k: v for k, v in cluster.items() if k != "@type"}
    assert type(entry.message).from_dict(body).to_dict() == entry.message.to_dict()


def debug_get(mesh: Mesh, path: str) -> tuple[int, str]:
    return http_get("127.0.0.1", mesh.demo.service.debug.port, path)


def test_debug_endpoint_reports_every_node_and_dumps_snapshots(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    assert debug_get(mesh, "/healthz") == (200, json.dumps({"status": "alive"}, indent=2) + "\n")
    status, body = debug_get(mesh, "/snapshots")
    assert status == 200
    nodes = {n["node"]: n for n in json.loads(body)["nodes"]}
    assert set(nodes) == set(mesh.demo.envoys)
    for node in nodes.values():
        assert node["connected"] and node["lastNack"] is None
        clusters = node["types"]["clusters"]
        assert clusters["acked"] == clusters["sent"] and not clusters["pending"]
        assert clusters["sent"] == node["versions"]["clusters"]
    # /snapshots/<node> is exactly what `meshxds dump` prints for that node.
    assert main(["dump", str(mesh.folder), "--node", "default.web-1"]) == 0
    assert debug_get(mesh, "/snapshots/default.web-1") == (200, capsys.readouterr().out)
    status, body = debug_get(mesh, "/snapshots/default.nobody")
    assert status == 404 and "default.web-1" in body
    # MeshService status counts the connected proxies (Kuma's dataplaneProxies.connected).
    status, body = debug_get(mesh, "/meshservices")
    services = {d["name"]: d for d in yaml.safe_load_all(body) if d and d.get("type") == "MeshService"}
    proxies = services["backend"]["status"]["dataplaneProxies"]
    assert (proxies["connected"], proxies["total"]) == (2, 2)


def test_requests_flow_through_two_sidecars(mesh: Mesh) -> None:
    web1 = mesh.ip(11)
    seen = {wait_until(lambda: http_get(web1, 20080), 5.0, what="web-1 → backend")[1] for _ in range(6)}
    assert seen == {f"backend-1 app {mesh.ip(21)}:8080", f"backend-2 app {mesh.ip(22)}:8080"}
    status, body = proxied_get((mesh.ip(12), 15001), ("241.0.0.1", 80))
    assert status == 200 and body.startswith("backend-")


def test_adding_a_dataplane_reaches_envoy_within_a_second(mesh: Mesh) -> None:
    app = EchoServer(mesh.ip(23), 8080, "backend-3 app").start()
    try:
        start = time.monotonic()
        (mesh.folder / "25-backend-3.yaml").write_text(
            f"type: Dataplane\nname: backend-3\nmesh: default\nnetworking:\n  address: {mesh.ip(23)}\n  inbound:\n"
            f"    - name: http\n      port: 10080\n      servicePort: 8080\n      serviceAddress: {mesh.ip(23)}\n"
            "      tags:\n        kuma.io/service: backend\n        kuma.io/protocol: http\n"
        )
        wait_until(lambda: "default.backend-3" in mesh.demo.snapshots(), PUSH_DEADLINE, what="backend-3 snapshot")
        assert_converges(
            mesh, ["web-1", "web-2"], start, "add a Dataplane", loaded=lambda c: c.dataplane("default.backend-3")
        )
        assert f"{mesh.ip(23)}:10080" in mesh.envoy("web-1").hosts("default_backend__default_msvc_80")
        catalog = mesh.demo.catalog
        dataplane = catalog.dataplane("default.backend-3") if catalog else None
        assert dataplane is not None
        mesh.demo.start_sidecar(dataplane)
        mesh.envoy("backend-3").wait_ready()
        bodies = wait_until(
            lambda: "backend-3" in "".join(http_get(mesh.ip(11), 20080)[1] for _ in range(6)), 5.0, what="backend-3"
        )
        assert bodies
    finally:
        app.stop()


def test_mode_switch_reaches_envoy_and_loses_no_request(mesh: Mesh) -> None:
    with SteadyClient(
        lambda: http_get(mesh.ip(11), 20080),
        lambda: proxied_get((mesh.ip(12), 15001), ("241.0.0.1", 80)),
    ) as client:
        wait_until(lambda: client.ok > 10, 5.0, what="steady traffic")
        start = mesh.edit("00-mesh.yaml", "mode: Everywhere", "mode: Exclusive")
        assert_converges(
            mesh,
            ["web-1", "web-2", "backend-1"],
            start,
            "mode switch",
            loaded=lambda c: c.meshes["default"].mesh.spec.mode.value == "Exclusive",
        )
        before = client.ok
        wait_until(lambda: client.ok > before + 10, 5.0, what="traffic after the switch")
    assert not any(n.startswith("outbound:240.") for n in mesh.envoy("web-2").dynamic_listeners())
    assert client.failures == [], client.failures[:5]


def test_removing_a_service_reaches_envoy_within_a_second(mesh: Mesh) -> None:
    assert any("redis" in c for c in mesh.envoy("backend-2").dynamic_clusters())
    start = time.monotonic()
    (mesh.folder / "40-redis.yaml").unlink()
    nodes = ["web-1", "web-2", "backend-1", "backend-2"]
    assert_converges(mesh, nodes, start, "remove a service", loaded=lambda c: c.dataplane("default.redis-1") is None)
    # Transparent proxies lose the redis MeshService; web-1's explicit outbound stays, with no endpoints.
    assert not any("redis" in c for c in mesh.envoy("backend-2").dynamic_clusters())
    assert mesh.envoy("web-1").hosts("redis") == []
    # The removed Dataplanes' own streams were closed (their Envoys keep their last config).
    wait_until(lambda: "default.redis-1" not in mesh.demo.background.call(mesh.demo.service.cache.connected))
    print(f"\npush latencies ({'delta' if mesh.demo.delta else 'sotw'}): {mesh.latencies}")


def test_invalid_edit_keeps_the_last_good_snapshots(mesh: Mesh, capfd: pytest.CaptureFixture[str]) -> None:
    before = mesh.snapshot("web-1").version
    failed = mesh.demo.service.failed_reloads
    mesh.edit("10-web.yaml", "port: 20080", "port: 200800")
    wait_until(lambda: mesh.demo.service.failed_reloads > failed, 2.0, what="the reload to fail")
    assert mesh.snapshot("web-1").version == before
    assert "port" in capfd.readouterr().err
    assert http_get(mesh.ip(11), 20080)[0] == 200
    mesh.edit("10-web.yaml", "port: 200800", "port: 20080")


def test_unknown_node_is_refused_until_its_dataplane_appears(mesh: Mesh, tmp_path: Path) -> None:
    """Documented behaviour: NOT_FOUND (Envoy retries with backoff), then its config once the file exists."""
    bootstrap = mesh.demo.sidecar_bootstrap("default.late-1")  # a valid token for a node not in the input yet
    with Envoy(bootstrap, tmp_path, "late-1") as envoy:
        wait_until(lambda: envoy.stat("control_plane.connected_state") == 0 and envoy.dynamic_clusters() == {})
        assert "default.late-1" not in mesh.demo.snapshots()
        (mesh.folder / "60-late.yaml").write_text(
            f"type: Dataplane\nname: late-1\nmesh: default\nnetworking:\n  address: {mesh.ip(41)}\n  inbound:\n"
            "    - port: 10080\n      servicePort: 8080\n      tags:\n        kuma.io/service: late\n"
            "  outbound:\n    - port: 20080\n      backendRef:\n        kind: MeshService\n        name: backend\n"
            "        port: 80\n"
        )
        wait_until(lambda: "default.late-1" in mesh.demo.snapshots(), 2.0, what="late-1 snapshot")
        envoy.wait_ready(10.0)
        wait_until(lambda: converged(envoy, mesh.snapshot("late-1")), 5.0, what="late-1 converged")
        assert f"{mesh.ip(21)}:10080" in envoy.hosts("default_backend__default_msvc_80")
