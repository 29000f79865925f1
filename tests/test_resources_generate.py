"""Universal MeshService generation (Kuma's generator.go): names, ports, labels, conflicts, modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshxds.resources import load_catalog
from tests.resources.util import EXAMPLE, MESH_EVERYWHERE, dataplane, load, meshservice, ok, services, write

GENERATED_LABELS = {
    "kuma.io/mesh": "default",
    "kuma.io/display-name": "redis",
    "kuma.io/managed-by": "meshservice-generator",
    "kuma.io/env": "universal",
    "kuma.io/zone": "default",
    "kuma.io/origin": "zone",
}


def short(problem: object, tmp: Path) -> str:
    return str(problem).replace(str(tmp) + "/", "")


def test_one_meshservice_per_service_tag_with_kuma_ports_and_labels(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane(
            "redis-1",
            "127.0.0.1",
            "{port: 16379, servicePort: 6379, tags: {kuma.io/service: redis}}",
            "{name: metrics, port: 19000, servicePort: 9000, tags: {kuma.io/service: redis, kuma.io/protocol: HTTP}}",
            "{port: 10080, protocol: grpc, tags: {kuma.io/service: api, kuma.io/protocol: http}}",
            "{port: 10081, tags: {kuma.io/service: other, kuma.io/protocol: mysql}}",
        )
    )
    found = services(ok(tmp_path, text))
    assert list(found) == ["redis", "api", "other"]
    redis = found["redis"]
    assert redis.labels == GENERATED_LABELS
    assert redis.spec.selector.dataplane_tags == {"kuma.io/service": "redis"}
    dumped = [p.model_dump(by_alias=True) for p in redis.spec.ports]
    assert dumped == [
        # targetPort is the inbound port, not servicePort; name falls back to the number
        {"name": "16379", "port": 16379, "targetPort": 16379, "appProtocol": "tcp"},
        {"name": "metrics", "port": 19000, "targetPort": 19000, "appProtocol": "http"},
    ]
    assert found["api"].spec.ports[0].app_protocol == "grpc"  # inbound.protocol before the tag
    assert found["other"].spec.ports[0].app_protocol == "tcp"  # not an appProtocol meshxds accepts


@pytest.mark.parametrize("mode", ["Everywhere", "ReachableBackends", "Exclusive"])
def test_every_mode_but_disabled_generates(tmp_path: Path, mode: str) -> None:
    text = f"type: Mesh\nname: default\nmeshServices: {{mode: {mode}}}\n---\n" + dataplane(
        "a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}"
    )
    assert list(services(ok(tmp_path, text))) == ["a"]


@pytest.mark.parametrize(
    "mesh", ["type: Mesh\nname: default\nmeshServices: {mode: Disabled}\n", "type: Mesh\nname: default\n", ""]
)
def test_disabled_generates_nothing_but_keeps_hand_written(tmp_path: Path, mesh: str) -> None:
    hand = meshservice("b", "a")
    text = mesh + "---\n" + dataplane("a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}") + "---\n" + hand
    catalog = ok(tmp_path, text)
    assert list(services(catalog)) == ["b"]
    assert catalog.meshes["default"].mesh.spec.mode.value == "Disabled"


def test_oldest_dataplane_wins_and_the_conflict_names_who_disagrees(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MESH_EVERYWHERE)
    # b.yaml loads before c.yaml: redis-9 (in b) is older than redis-1 (in c) whatever the names say.
    write(tmp_path, "b.yaml", dataplane("redis-9", "127.0.0.1", "{port: 6379, tags: {kuma.io/service: redis}}"))
    write(
        tmp_path,
        "c.yaml",
        dataplane("redis-1", "127.0.0.2", "{port: 6380, tags: {kuma.io/service: redis}}")
        + "---\n"
        + dataplane("redis-2", "127.0.0.3", "{port: 6379, tags: {kuma.io/service: redis}}")
        + "---\n"
        + dataplane(
            "redis-3",
            "127.0.0.4",
            "{port: 6379, tags: {kuma.io/service: redis}}",
            "{port: 6380, tags: {kuma.io/service: redis}}",
        ),
    )
    result = load_catalog([tmp_path])
    assert result.catalog is not None
    redis = services(result.catalog)["redis"]
    assert [(p.port, p.target_port) for p in redis.spec.ports] == [(6379, 6379)]
    assert [short(w, tmp_path) for w in result.warnings] == [
        "c.yaml: document 1: MeshService default/redis: port conflict, ports must be identical across Dataplane "
        "inbounds grouped into a single MeshService: redis-1 [6380:6380/tcp], redis-3 [6379:6379/tcp, "
        "6380:6380/tcp] differ from the oldest, redis-9 [6379:6379/tcp], whose ports are kept"
    ]
    # Every selected Dataplane counts; only those serving every port are healthy.
    assert redis.status.dataplane_proxies is not None
    assert (redis.status.dataplane_proxies.total, redis.status.dataplane_proxies.healthy) == (4, 3)


def test_hand_written_meshservice_is_never_overwritten(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("redis-1", "127.0.0.1", "{name: main, port: 16379, tags: {kuma.io/service: redis}}")
        + "---\n"
        + "type: MeshService\nname: redis\nlabels: {team: db}\n"
        + "spec: {selector: {dataplaneTags: {kuma.io/service: redis}}, ports: [{port: 6379, targetPort: main}]}\n"
    )
    result = load(tmp_path, text)
    assert result.catalog is not None
    redis = services(result.catalog)["redis"]
    assert [(p.port, p.target_port, p.name) for p in redis.spec.ports] == [(6379, "main", None)]
    assert redis.labels["team"] == "db"
    assert "kuma.io/managed-by" not in redis.labels
    assert [short(w, tmp_path) for w in result.warnings] == [
        "in.yaml: document 3: MeshService default/redis: kept as written: "
        "not generated from the inbounds of Dataplane(s) redis-1"
    ]


def test_service_names_that_are_not_dns1035_are_skipped_with_a_warning(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane(
            "dp-1",
            "127.0.0.1",
            "{port: 80, tags: {kuma.io/service: backend_svc}}",
            "{port: 81, tags: {kuma.io/service: fine}}",
        )
    )
    result = load(tmp_path, text)
    assert result.catalog is not None
    assert list(services(result.catalog)) == ["fine"]
    assert [short(w, tmp_path) for w in result.warnings] == [
        "in.yaml: document 2: Dataplane default/dp-1: networking.inbound[0].tags.kuma.io/service: "
        "no MeshService generated: 'backend_svc' is not a DNS-1035 label"
    ]


def test_generation_is_per_mesh_and_uses_the_zone(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\ntype: Mesh\nname: other\nmeshServices: {mode: Exclusive}\n---\n"
        + dataplane("a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}")
        + "---\n"
        + dataplane("a-1", "127.0.0.2", "{port: 81, tags: {kuma.io/service: a}}", mesh="other")
    )
    write(tmp_path, "in.yaml", text)
    result = load_catalog([tmp_path / "in.yaml"], zone="east")
    assert result.catalog is not None and not result.warnings
    a_default = services(result.catalog)["a"]
    a_other = services(result.catalog, "other")["a"]
    assert (a_default.spec.ports[0].port, a_other.spec.ports[0].port) == (80, 81)
    assert a_other.labels["kuma.io/mesh"] == "other"
    assert a_other.labels["kuma.io/zone"] == "east"
    assert result.catalog.meshes["other"].dataplanes[0].labels["kuma.io/zone"] == "east"


def test_example_generation(tmp_path: Path) -> None:
    result = load_catalog([EXAMPLE])
    assert result.catalog is not None
    view = result.catalog.meshes["default"]
    found = {ms.name: ms for ms in view.mesh_services}
    assert list(found) == ["web", "backend", "redis"]
    assert [d.name for d in view.dataplanes] == ["web-1", "web-2", "backend-1", "backend-2", "redis-1", "redis-2"]
    assert found["backend"].labels.get("kuma.io/managed-by") is None
    assert [p.target_port for p in found["backend"].spec.ports] == ["http", 10081]
    assert [p.port for p in found["redis"].spec.ports] == [16379]
    assert [str(w).split(": ")[2] for w in result.warnings] == [
        "MeshService default/backend",
        "MeshService default/redis",
    ]


def test_existing_generated_spec_is_kept_while_a_dataplane_agrees(tmp_path: Path) -> None:
    """Kuma keeps an existing MeshService's ports as long as one Dataplane still has them."""
    old = dataplane("redis-1", "127.0.0.1", "{port: 6379, tags: {kuma.io/service: redis}}")
    new = dataplane("redis-0", "127.0.0.2", "{port: 7000, tags: {kuma.io/service: redis}}")
    first = load(tmp_path, MESH_EVERYWHERE + "---\n" + old).catalog
    assert first is not None
    # redis-0 now loads first (it is the "oldest"), but redis-1 still agrees with the existing spec.
    second = load(tmp_path, MESH_EVERYWHERE + "---\n" + new + "---\n" + old, previous=first)
    assert second.catalog is not None
    assert [p.port for p in services(second.catalog)["redis"].spec.ports] == [6379]
    assert [short(w, tmp_path) for w in second.warnings] == [
        "in.yaml: document 2: MeshService default/redis: port conflict, ports must be identical across Dataplane "
        "inbounds grouped into a single MeshService: redis-0 [7000:7000/tcp] differ from the ports it already had "
        "[6379:6379/tcp], kept while redis-1 has them"
    ]
    # Once no Dataplane agrees, the oldest one's ports replace it.
    third = load(tmp_path, MESH_EVERYWHERE + "---\n" + new, previous=second.catalog)
    assert third.catalog is not None and not third.warnings
    assert [p.port for p in services(third.catalog)["redis"].spec.ports] == [7000]
    # Without a previous catalog the oldest Dataplane wins.
    fresh = load(tmp_path, MESH_EVERYWHERE + "---\n" + new + "---\n" + old).catalog
    assert fresh is not None and [p.port for p in services(fresh)["redis"].spec.ports] == [7000]
