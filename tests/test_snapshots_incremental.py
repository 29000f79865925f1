"""The stateful Builder: after any sequence of edits it returns exactly what a fresh ``snapshots_for``
returns (versions and dumps), and a proxy whose snapshot did not change gets the very same object back."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshxds.resources import Catalog, load_catalog
from meshxds.snapshots.builder import Builder, SnapshotError, snapshots_for
from meshxds.snapshots.dump import to_json
from meshxds.snapshots.snapshot import TYPE_ORDER, Snapshot
from tests.test_translators_golden import CASES
from tests.test_translators_properties import MODES, SERVICES, world

Load = Callable[..., Catalog]
Docs = list[dict[str, Any]]


def mesh(name: str, mode: str = "Exclusive", locality: bool = False) -> dict[str, Any]:
    return {
        "type": "Mesh",
        "name": name,
        "meshServices": {"mode": mode},
        "routing": {"localityAwareLoadBalancing": locality},
    }


def dataplane(mesh: str, name: str, address: str, service: str, protocol: str = "http") -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "name": name,
        "mesh": mesh,
        "networking": {
            "address": address,
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": service, "kuma.io/protocol": protocol}}],
            "transparentProxying": {"redirectPortInbound": 15006, "redirectPortOutbound": 15001},
        },
    }


def base() -> Docs:
    return [
        mesh("red"),
        dataplane("red", "a-1", "10.0.0.1", "a"),
        dataplane("red", "a-2", "10.0.0.2", "a"),
        dataplane("red", "b-1", "10.0.0.3", "b", "tcp"),
        dataplane("red", "c-1", "10.0.0.4", "c", "grpc"),
        mesh("blue"),
        dataplane("blue", "d-1", "10.1.0.1", "d"),
        dataplane("blue", "e-1", "10.1.0.2", "e", "tcp"),
    ]


def find(docs: Docs, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["name"] == name)


def unhealthy(docs: Docs) -> None:
    find(docs, "a-2")["networking"]["inbound"][0]["health"] = {"ready": False}


def new_dataplane(docs: Docs) -> None:
    docs.insert(4, dataplane("red", "b-2", "10.0.0.5", "b", "tcp"))


def remove_service(docs: Docs) -> None:
    docs.remove(find(docs, "c-1"))


def mode_switch(docs: Docs) -> None:
    find(docs, "red")["meshServices"]["mode"] = "Everywhere"


def reachable_backends(docs: Docs) -> None:
    tp = find(docs, "a-1")["networking"]["transparentProxying"]
    tp["reachableBackends"] = {"refs": [{"kind": "MeshService", "name": "b"}]}


def mesh_setting(docs: Docs) -> None:
    find(docs, "red")["routing"]["localityAwareLoadBalancing"] = True
    # A local inbound cannot claim another zone (the zone control plane overwrites kuma.io/zone), so
    # the visible change comes from another tag.
    find(docs, "b-1")["networking"]["inbound"][0]["tags"]["version"] = "v2"


def protocol_change(docs: Docs) -> None:
    for name in ("b-1", "b-2"):
        find(docs, name)["networking"]["inbound"][0]["tags"]["kuma.io/protocol"] = "http"


def other_mesh_only(docs: Docs) -> None:
    find(docs, "d-1")["networking"]["address"] = "10.1.0.9"


def moved_endpoint(docs: Docs) -> None:
    find(docs, "b-1")["networking"]["address"] = "10.0.0.33"


EDITS = [
    unhealthy,
    new_dataplane,
    remove_service,
    mode_switch,
    reachable_backends,
    mesh_setting,
    protocol_change,
    other_mesh_only,
    moved_endpoint,
]


def load(docs: Docs, previous: Catalog | None = None) -> Catalog:
    """As ``meshxds serve`` reloads: with the previous catalog, so VIPs stay put."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "input.yaml").write_text(yaml.safe_dump_all(docs))
        result = load_catalog([folder], previous=previous)
    assert result.catalog is not None, [str(p) for p in result.errors]
    return result.catalog


Snapshots = dict[str, Snapshot]


def check_step(
    builder: Builder, catalog: Catalog, before: Snapshots, fresh_before: Snapshots, dumps: bool = False
) -> tuple[Snapshots, Snapshots]:
    """One reload: incremental equals fresh (every resource's bytes; with ``dumps`` also the JSON dump of
    the first changed proxy, dumps being slow), and exactly the proxies whose content changed got new objects."""
    got, fresh = builder.build(catalog), snapshots_for(catalog, builder.issuer)  # the same identities
    assert list(got) == list(fresh)
    for node, snap in got.items():
        assert dict(snap.versions) == dict(fresh[node].versions), node
        assert snap.version == fresh[node].version, node
        for type_url in TYPE_ORDER:
            assert {n: e.value for n, e in snap.get(type_url).items()} == {
                n: e.value for n, e in fresh[node].get(type_url).items()
            }, node
        old = before.get(node)
        unchanged = node in fresh_before and dict(fresh_before[node].versions) == dict(fresh[node].versions)
        assert (snap is old) == unchanged, node
        if dumps and not unchanged:
            assert to_json(snap) == to_json(fresh[node]), node
            dumps = False
    return got, fresh


def test_every_kind_of_edit_matches_a_fresh_build() -> None:
    docs = base()
    builder = Builder()
    catalog = load(docs)
    before = fresh_before = builder.build(catalog)
    assert {n: s.versions for n, s in before.items()} == {n: s.versions for n, s in snapshots_for(catalog).items()}
    for edit in EDITS:
        edit(docs)
        catalog = load(docs, catalog)
        got, fresh = check_step(builder, catalog, before, fresh_before, dumps=True)
        changed = {n for n in got if got[n] is not before.get(n)}
        assert changed, edit.__name__
        edited_mesh = "blue." if edit is other_mesh_only else "red."
        assert all(n.startswith(edited_mesh) for n in changed), edit.__name__  # the other mesh is untouched
        before, fresh_before = got, fresh
    again = builder.build(load(docs, catalog))
    assert all(again[n] is before[n] for n in before)  # a reload of the same input pushes nothing
    check_step(builder, load(base(), catalog), before, fresh_before)  # back to the start in one step


def test_a_failed_build_leaves_the_builder_usable() -> None:
    docs = base()
    builder = Builder()
    catalog = load(docs)
    first = builder.build(catalog)
    # A legacy service named like a proxy's own app cluster: the snapshot would hold two "localhost:8080".
    clash = dataplane("red", "x-1", "10.0.0.9", "localhost:8080", "tcp")
    client = dataplane("red", "y-1", "10.0.0.10", "y", "tcp")
    del client["networking"]["transparentProxying"]
    client["networking"]["outbound"] = [{"port": 9000, "tags": {"kuma.io/service": "localhost:8080"}}]
    bad = load([*docs, clash, client], catalog)
    with pytest.raises(SnapshotError, match="two different clusters named 'localhost:8080'"):
        snapshots_for(bad)
    with pytest.raises(SnapshotError, match="two different clusters named 'localhost:8080'"):
        builder.build(bad)
    again = builder.build(load(docs, catalog))
    assert all(again[n] is first[n] for n in first)


# --------------------------------------------------------------------------- random edit sequences


def mutate(data: st.DataObject, docs: Docs) -> None:
    """One random edit of the kinds a user makes (health, address, tags, add, remove, mode, reachability...)."""
    meshes = [d for d in docs if d["type"] == "Mesh"]
    dps = [d for d in docs if d["type"] == "Dataplane"]
    kinds = ["health", "address", "add", "remove", "mode", "reach", "locality", "tag", "protocol"]
    kind = data.draw(st.sampled_from(kinds))
    if kind in ("mode", "locality") or not dps:
        m = data.draw(st.sampled_from(meshes))
        if kind == "locality":
            m["routing"]["localityAwareLoadBalancing"] = not m["routing"]["localityAwareLoadBalancing"]
        else:
            m["meshServices"]["mode"] = data.draw(st.sampled_from(MODES))
        return
    dp = data.draw(st.sampled_from(dps))
    inbound = data.draw(st.sampled_from(dp["networking"]["inbound"]))
    if kind == "health":
        inbound["health"] = {"ready": data.draw(st.booleans())}
    elif kind == "address":
        dp["networking"]["address"] = f"10.9.{data.draw(st.integers(0, 3))}.{data.draw(st.integers(1, 250))}"
    elif kind == "protocol":
        inbound["tags"]["kuma.io/protocol"] = data.draw(st.sampled_from(["http", "tcp", "grpc"]))
    elif kind == "tag":
        inbound["tags"]["kuma.io/service"] = data.draw(st.sampled_from(SERVICES))
    elif kind == "add":
        clone = copy.deepcopy(dp)
        taken = {d["name"] for d in docs}
        n = len(docs)  # after a removal len(docs) repeats: take the next suffix no Dataplane has
        while f"{dp['name']}-x{n}" in taken:
            n += 1
        clone["name"] = f"{dp['name']}-x{n}"
        clone["networking"]["address"] = f"10.8.0.{n}"
        docs.append(clone)
    elif kind == "remove":
        docs.remove(dp)
    elif "transparentProxying" in dp["networking"]:
        names = data.draw(st.lists(st.sampled_from(SERVICES), max_size=2, unique=True))
        refs = [{"kind": "MeshService", "name": n} for n in names]
        dp["networking"]["transparentProxying"]["reachableBackends"] = {"refs": refs}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world(), st.data())
def test_random_edit_sequences_match_fresh_builds(docs: Docs, data: st.DataObject) -> None:
    for m in (d for d in docs if d["type"] == "Mesh"):
        m.setdefault("routing", {"localityAwareLoadBalancing": False})
    builder = Builder()
    catalog = load(docs)
    before = fresh_before = builder.build(catalog)
    for _ in range(data.draw(st.integers(1, 5))):
        mutate(data, docs)
        catalog = load(docs, catalog)
        try:
            snapshots_for(catalog)
        except SnapshotError:
            with pytest.raises(SnapshotError):
                builder.build(catalog)
            continue
        before, fresh_before = check_step(builder, catalog, before, fresh_before)


def test_one_builder_through_every_golden_case() -> None:
    """Case after case (multizone, Kubernetes, every mode...) and back: always what a fresh build gives."""
    builder = Builder()
    before: Snapshots = {}
    fresh_before: Snapshots = {}
    for case in [*CASES, *reversed(CASES)]:
        zone_file = case / "zone"
        zone = zone_file.read_text().strip() if zone_file.exists() else "default"
        result = load_catalog([case / "input"], zone=zone)
        assert result.catalog is not None
        before, fresh_before = check_step(builder, result.catalog, before, fresh_before)


def test_an_endpoint_move_carries_destinations_and_plans_over() -> None:
    """Moving an endpoint changes no service, policy or protocol: the rebuild keeps the previous build's
    destinations and outbound plans (and still equals a fresh build); a protocol change does not."""
    docs = base()
    builder = Builder()
    catalog = load(docs)
    before = fresh_before = builder.build(catalog)
    first = builder._meshes["red"].translator
    moved_endpoint(docs)
    catalog = load(docs, catalog)
    before, fresh_before = check_step(builder, catalog, before, fresh_before, dumps=True)
    carried = builder._meshes["red"].translator
    assert carried is not first and carried.outbounds is first.outbounds and carried.targeting is first.targeting
    find(docs, "b-1")["networking"]["inbound"][0]["tags"]["kuma.io/protocol"] = "http"
    catalog = load(docs, catalog)
    check_step(builder, catalog, before, fresh_before, dumps=True)
    assert builder._meshes["red"].translator.outbounds is not first.outbounds
