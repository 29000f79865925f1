"""Two ``meshxds serve --store postgres://`` replicas on one real PostgreSQL, with a real Envoy.

What the issue promises: ``meshxds apply`` through replica A changes what an Envoy connected to
replica B receives within 1 s; ``kill -9`` of A loses nothing written, the leader role moves and VIPs
stay; restarting every replica keeps VIPs and generated MeshServices; ``/metrics`` parses with the
Prometheus text parser and shows a NACK the test provoked.

Kuma's equivalents: pkg/plugins/leader/postgres/leader_elector.go (one leader, others wait),
pkg/plugins/resources/postgres/events/listener.go (changes reach every replica),
pkg/core/resources/apis/core/vip/allocator.go (VIPs kept in the store), pkg/util/xds/stats_callbacks.go
(``xds_requests_received{confirmation="NACK"}``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshxds.xds.bootstrap import bootstrap_config
from tests.support.envoy import Envoy
from tests.support.net import free_port
from tests.support.poll import wait_until
from tests.support.postgres import PostgresServer
from tests.support.replica import Replica

pytestmark = [pytest.mark.real, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
BACKEND = "default_backend__default_msvc_80"
PUSH_DEADLINE = 1.0


def dataplane(name: str, ip: str, service: str, port: int, outbound: int | None = None) -> dict[str, Any]:
    networking: dict[str, Any] = {
        "address": ip,
        "inbound": [{"port": port, "servicePort": port + 1000, "tags": {"kuma.io/service": service}}],
    }
    if outbound is not None:
        networking["outbound"] = [
            {"address": ip, "port": outbound, "backendRef": {"kind": "MeshService", "name": "backend", "port": 80}}
        ]
    return {"type": "Dataplane", "name": name, "mesh": "default", "networking": networking}


BACKEND_SERVICE = {
    "type": "MeshService",
    "name": "backend",
    "mesh": "default",
    "spec": {
        "selector": {"dataplaneTags": {"kuma.io/service": "backend"}},
        "ports": [{"name": "http", "port": 80, "targetPort": 18080, "appProtocol": "http"}],
    },
}


@dataclass
class World:
    a: Replica
    b: Replica
    token: str
    tmp: Path
    envoy: Envoy  # web-1, bootstrapped with replica B only
    both: Envoy  # web-2, bootstrapped with A and B (meshxds bootstrap --ads A,B)
    latencies: list[float]

    def apply(self, via: Replica, *docs: dict[str, Any]) -> None:
        path = self.tmp / f"apply-{time.monotonic_ns()}.yaml"
        path.write_text("\n---\n".join(json.dumps(d) for d in docs))
        env = {**os.environ, "MESHXDS_TOKEN": self.token}
        cmd = [sys.executable, "-m", "meshxds.cli.main", "apply", "-f", str(path), "--api", via.api]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stderr

    def put(self, via: Replica, doc: dict[str, Any]) -> None:
        path = f"/meshes/{doc['mesh']}/{doc['type'].lower()}s/{doc['name']}"
        request = urllib.request.Request(via.api + path, data=json.dumps(doc).encode(), method="PUT")
        request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status in (200, 201)

    def vips(self, via: Replica) -> dict[str, list[str]]:
        items = via.get("/meshes/default/meshservices")["items"]
        return {i["name"]: [v["ip"] for v in i.get("status", {}).get("vips", [])] for i in items}


def leader(replica: Replica) -> float:
    for family in text_string_to_metric_families(replica.metrics()):
        if family.name == "leader":
            return float(family.samples[0].value)
    raise AssertionError("no leader metric")


def streams(replica: Replica) -> float:
    for family in text_string_to_metric_families(replica.metrics()):
        if family.name == "xds_streams_active":
            return float(family.samples[0].value)
    return 0.0


@pytest.fixture(scope="module")
def world(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("replicas")
    url = postgres_server.new_database()
    a = Replica(url, tmp, "a").start()
    wait_until(lambda: leader(a) == 1.0, 10.0, what="a leads")
    b = Replica(url, tmp, "b").start()
    token = subprocess.run(
        [sys.executable, "-m", "meshxds.cli.main", "token", "--admin", "--store", url],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    listen = free_port()
    envoy = Envoy(bootstrap_config("default.web-1", ads_port=b.ads_port), tmp / "envoy")
    both = Envoy(
        bootstrap_config("default.web-2", ads_port=a.ads_port, more_ads=[("127.0.0.1", b.ads_port)]), tmp / "both"
    )
    w = World(a, b, token, tmp, envoy, both, [])
    w.apply(a, {"type": "Mesh", "name": "default", "meshServices": {"mode": "Everywhere"}})
    w.apply(a, dataplane("web-1", "127.0.0.1", "web", free_port(), outbound=listen), BACKEND_SERVICE)
    w.apply(a, dataplane("web-2", "127.0.0.1", "web", free_port(), outbound=free_port()))
    w.apply(a, dataplane("backend-1", "127.0.0.2", "backend", 18080))
    wait_until(lambda: b.get("/meshes/default/dataplanes/web-1/_config"), 5.0, what="b has web-1")
    wait_until(lambda: a.get("/meshes/default/dataplanes/web-2/_config"), 5.0, what="a has web-2")
    w.envoy.start()
    # Which replica Envoy picks first is up to its load balancer: restart it until it is on A, so that
    # killing A below really makes it fail over to B.
    for _ in range(10):
        w.both.start()
        wait_until(lambda: streams(a) + streams(b) == 2, 10.0, what="both Envoys connected")
        if streams(a) == 1:
            break
        w.both.stop()
    assert streams(a) == 1, "the failover Envoy never connected to replica A"
    try:
        yield w
    finally:
        w.envoy.stop()
        w.both.stop()
        a.kill()
        b.kill()


def test_apply_through_a_reaches_an_envoy_on_b_within_a_second(world: World) -> None:
    wait_until(lambda: len(world.envoy.hosts(BACKEND)) == 1, 10.0, what="Envoy has backend-1")
    for i in range(3, 8):
        start = time.monotonic()  # from the API write (the CLI's own start-up is not the control plane's)
        world.put(world.a, dataplane(f"backend-{i}", f"127.0.0.{i}", "backend", 18080))
        wait_until(lambda: len(world.envoy.hosts(BACKEND)) == i - 1, 5.0, interval=0.005, what=f"backend-{i}")  # noqa: B023
        world.latencies.append(time.monotonic() - start)
    assert max(world.latencies) < PUSH_DEADLINE, world.latencies


def test_a_provoked_nack_shows_in_metrics(world: World) -> None:
    web = world.b.get("/meshes/default/dataplanes/web-1")
    bad = {k: v for k, v in web.items() if k in ("type", "name", "mesh", "networking")}
    inbound = {k: v for k, v in bad["networking"]["inbound"][0].items() if k != "address"}
    # Kuma accepts a domain name as a Dataplane address (validateAddress); Envoy cannot listen on one.
    bad["networking"] = {**bad["networking"], "address": "web-1.invalid", "inbound": [inbound]}
    world.apply(world.a, bad)  # valid for the control plane, an unparseable listener address for Envoy

    def nacks() -> float:
        total = 0.0
        for family in text_string_to_metric_families(world.b.metrics()):
            for sample in family.samples:
                if family.name == "xds_requests_received" and sample.labels.get("confirmation") == "NACK":
                    total += sample.value
        return total

    wait_until(lambda: nacks() >= 1, 10.0, what="a NACK counted on b")
    families = {f.name: f for f in text_string_to_metric_families(world.b.metrics())}
    per_node = {s.labels["node"]: s.value for s in families["meshxds_xds_nacks"].samples if s.name.endswith("_total")}
    assert per_node.get("default.web-1", 0) >= 1
    assert families["xds_streams_active"].samples[0].value >= 1
    web_fixed = {k: v for k, v in web.items() if k in ("type", "name", "mesh", "networking")}
    world.apply(world.a, web_fixed)


def test_kill_9_of_the_leader_keeps_data_moves_the_leader_and_keeps_vips(world: World) -> None:
    before = world.vips(world.b)
    assert before and all(before.values())
    assert leader(world.b) == 0.0
    world.a.kill()  # SIGKILL: no clean shutdown, its advisory lock goes with its connections
    wait_until(lambda: leader(world.b) == 1.0, 5.0, what="b leads")
    assert world.vips(world.b) == before
    assert len(world.b.get("/meshes/default/dataplanes")["items"]) == 8  # web-1, web-2, backend-1 and 3..7
    # b alone now takes writes and serves them.
    world.apply(world.b, dataplane("backend-8", "127.0.0.8", "backend", 18080))
    wait_until(lambda: len(world.envoy.hosts(BACKEND)) == 7, 5.0, what="backend-8 via b")
    # The Envoy bootstrapped with both replicas is now (or still) on b and gets the change too.
    wait_until(lambda: len(world.both.hosts(BACKEND)) == 7, 15.0, what="failover Envoy has backend-8")
    assert world.both.stat("control_plane.connected_state") == 1


def test_restarting_every_replica_keeps_vips_and_generated_services(world: World) -> None:
    before = world.vips(world.b)
    generated = {i["name"] for i in world.b.get("/meshes/default/meshservices")["items"]} - {"backend"}
    assert generated  # web, from web-1's inbound
    world.b.kill()
    world.a.start()
    world.b.start()
    wait_until(lambda: leader(world.a) + leader(world.b) == 1.0, 10.0, what="one leader")
    assert world.vips(world.a) == before
    assert world.vips(world.b) == before
    wait_until(lambda: len(world.envoy.hosts(BACKEND)) == 7, 15.0, what="Envoy back on b")
