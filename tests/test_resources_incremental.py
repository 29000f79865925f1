"""A Catalog built from the previous one (``resources.memo``) equals one built from scratch, and keeps what did
not change as the very same objects.

Equivalence: one chain of builds takes over each previous build's results, another builds every step from
scratch (the same VIP state, no memo); after every edit of a table of edits (and of a seeded random series)
both give equal Catalogs, warnings and errors. The documents come in the three ways the callers hand them
over: cached per file (``store.folder.FileCache``: unchanged documents are the very same objects), one file
re-parsed whole (all new objects), and re-wrapped per record (the store's Mirror: new ``Loaded``, the same
resources). Identity: after one Dataplane moves, every other resource of the Catalog is the very object of
the previous Catalog, which is what the translators' reuse compares (``snapshots.builder.MeshInputs``).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.resources import Catalog, LoadResult, catalog_from_documents
from meshxds.resources.errors import Origin, Problem
from meshxds.resources.health import HealthReport
from meshxds.resources.loader import Documents, Loaded, RawK8s, load_documents, parse_document
from meshxds.resources.model import Resource
from meshxds.store.folder import FileCache

Doc = dict[str, Any]


def dataplane(name: str, service: str, address: str, mesh: str = "default", **networking: Any) -> Doc:
    inbound = [{"port": 8080, "tags": {"kuma.io/service": service, "kuma.io/protocol": "http", "team": "blue"}}]
    return {
        "type": "Dataplane",
        "name": name,
        "mesh": mesh,
        "networking": {"address": address, "inbound": inbound, **networking},
    }


def base() -> dict[str, Doc]:
    """File name → document: two meshes, generated and hand-written services, a MeshMultiZoneService,
    a HostnameGenerator, policies, a MeshTrafficPermission and references between them."""
    tproxy = {
        "redirectPortInbound": 15006,
        "redirectPortOutbound": 15001,
        "reachableBackends": {"refs": [{"kind": "MeshService", "name": "api"}, {"kind": "MeshService", "name": "x"}]},
    }
    route = {
        "to": [
            {
                "targetRef": {"kind": "MeshService", "name": "api"},
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/a"}}],
                        "default": {"backendRefs": [{"kind": "MeshService", "name": "api", "port": 8080}]},
                    }
                ],
            }
        ]
    }
    docs: dict[str, Doc] = {
        "00-mesh": {"type": "Mesh", "name": "default", "meshServices": {"mode": "Exclusive"}},
        "01-other": {"type": "Mesh", "name": "other", "meshServices": {"mode": "Everywhere"}},
        "10-web-1": dataplane(
            "web-1",
            "web",
            "10.0.0.1",
            outbound=[{"port": 9000, "backendRef": {"kind": "MeshService", "name": "api", "port": 8080}}],
        ),
        "11-web-2": dataplane("web-2", "web", "10.0.0.2", transparentProxying=tproxy),
        "20-api-1": dataplane("api-1", "api", "10.0.1.1"),
        "21-api-2": dataplane("api-2", "api", "10.0.1.2"),
        "22-api-3": dataplane("api-3", "api", "10.0.1.3"),
        "30-db-1": dataplane("db-1", "db", "10.0.2.1", mesh="other"),
        "40-hand": {
            "type": "MeshService",
            "name": "api-hand",
            "mesh": "default",
            "labels": {"team": "blue"},
            "spec": {
                "selector": {"dataplaneTags": {"kuma.io/service": "api"}},
                "ports": [{"port": 80, "targetPort": 8080, "appProtocol": "http"}],
            },
        },
        "50-mzs": {
            "type": "MeshMultiZoneService",
            "name": "all-api",
            "mesh": "default",
            "spec": {
                "selector": {"meshService": {"matchLabels": {"kuma.io/display-name": "api"}}},
                "ports": [{"port": 80}],
            },
        },
        "60-hostnames": {
            "type": "HostnameGenerator",
            "name": "by-team",
            "spec": {
                "selector": {"meshService": {"matchLabels": {"kuma.io/origin": "zone"}}},
                "template": "{{ .DisplayName }}.{{ .Mesh }}.custom",
            },
        },
        "70-route": {"type": "MeshHTTPRoute", "name": "route", "mesh": "default", "spec": route},
        "71-timeout": {
            "type": "MeshTimeout",
            "name": "timeout",
            "mesh": "default",
            "spec": {
                "targetRef": {"kind": "Mesh"},
                "to": [{"targetRef": {"kind": "MeshService", "name": "api"}, "default": {"connectionTimeout": "2s"}}],
            },
        },
        "72-mtp": {
            "type": "MeshTrafficPermission",
            "name": "allow-all",
            "mesh": "default",
            "spec": {
                "targetRef": {"kind": "Mesh"},
                "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
            },
        },
    }
    return docs


@dataclass
class State:
    """The documents plus the inputs fed in at the edge."""

    docs: dict[str, Doc]
    connected: frozenset[str] = frozenset()
    health: dict[str, HealthReport] | None = None


Edit = Callable[[State, random.Random], None]


def set_address(name: str, address: str) -> Edit:
    def edit(state: State, rng: random.Random) -> None:
        for doc in state.docs.values():
            if doc.get("type") == "Dataplane" and doc["name"] == name:
                doc["networking"]["address"] = address

    return edit


def dataplanes(state: State) -> list[str]:
    """File names of the (valid) Dataplane documents."""
    return sorted(k for k, d in state.docs.items() if d.get("type") == "Dataplane" and d["name"] != "broken")


def move_random_dataplane(state: State, rng: random.Random) -> None:
    doc = state.docs[rng.choice(dataplanes(state))]
    doc["networking"]["address"] = f"10.9.{rng.randrange(256)}.{rng.randrange(256)}"


def add_dataplane(state: State, rng: random.Random) -> None:
    n = rng.randrange(4, 40)
    state.docs[f"23-api-{n}"] = dataplane(f"api-{n}", rng.choice(["api", "new", "web"]), f"10.0.3.{n}")


def remove_dataplane(state: State, rng: random.Random) -> None:
    names = dataplanes(state)
    if len(names) > 2:
        del state.docs[rng.choice(names)]


def change_hand_service(state: State, rng: random.Random) -> None:
    if "40-hand" in state.docs:
        state.docs["40-hand"]["spec"]["ports"][0]["port"] = rng.choice([80, 81, 82])
    else:
        state.docs["40-hand"] = base()["40-hand"]


def change_policy(state: State, rng: random.Random) -> None:
    rules = state.docs["70-route"]["spec"]["to"][0]["rules"]
    rules[0]["matches"][0]["path"]["value"] = rng.choice(["/a", "/b", "/c"])
    state.docs["70-route"]["spec"]["to"][0]["targetRef"]["name"] = rng.choice(["api", "web", "nothing"])


def change_hostnames(state: State, rng: random.Random) -> None:
    template = rng.choice(["{{ .DisplayName }}.{{ .Mesh }}.custom", "{{ .Name }}.fixed", '{{ label "team" }}.t'])
    state.docs["60-hostnames"]["spec"]["template"] = template


def change_mode(state: State, rng: random.Random) -> None:
    state.docs["00-mesh"]["meshServices"]["mode"] = rng.choice(["Exclusive", "Everywhere", "ReachableBackends"])


def change_multizone(state: State, rng: random.Random) -> None:
    labels = state.docs["50-mzs"]["spec"]["selector"]["meshService"]["matchLabels"]
    labels["kuma.io/display-name"] = rng.choice(["api", "web", "none"])


def change_service_name(state: State, rng: random.Random) -> None:
    """A Dataplane serves another service: one generated MeshService goes, another may come."""
    doc = state.docs[rng.choice(dataplanes(state))]
    doc["networking"]["inbound"][0]["tags"]["kuma.io/service"] = rng.choice(["api", "web", "fresh", "Not_DNS"])


def reorder(state: State, rng: random.Random) -> None:
    """A document moves to another file: the same resource, elsewhere in load order."""
    old = rng.choice(dataplanes(state))
    state.docs[f"{rng.randrange(2, 99):02d}-{old[3:]}-moved"] = state.docs.pop(old)


def connect(state: State, rng: random.Random) -> None:
    state.connected = frozenset(rng.sample(["default.web-1", "default.api-1", "default.api-2", "other.db-1"], 2))


def report_health(state: State, rng: random.Random) -> None:
    state.health = {"default.api-1": HealthReport(envoy_ready=rng.random() < 0.5)}


def break_input(state: State, rng: random.Random) -> None:
    """An invalid document (an error: no Catalog), fixed again by the next edit that rewrites it."""
    state.docs["99-broken"] = {"type": "Dataplane", "name": "broken", "mesh": "nowhere", "networking": {}}


def fix_input(state: State, rng: random.Random) -> None:
    for name in [k for k, d in state.docs.items() if d.get("name") == "broken"]:
        del state.docs[name]


def add_k8s_service(state: State, rng: random.Random) -> None:
    """A Kubernetes Service of the mesh (converted to a MeshService with the Mesh and Dataplanes known)."""
    state.docs["80-k8s"] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "k8s-api", "namespace": "apps", "labels": {"kuma.io/mesh": "default"}},
        "spec": {
            "clusterIP": "10.96.0.10",
            "selector": {"app": "api"},
            "ports": [{"port": rng.choice([80, 81]), "targetPort": 8080}],
        },
    }


EDITS: dict[str, Edit] = {
    "address": set_address("web-1", "10.1.1.1"),
    "address back": set_address("web-1", "10.0.0.1"),
    "any address": move_random_dataplane,
    "add dataplane": add_dataplane,
    "remove dataplane": remove_dataplane,
    "hand-written MeshService": change_hand_service,
    "policy": change_policy,
    "HostnameGenerator": change_hostnames,
    "mesh mode": change_mode,
    "MeshMultiZoneService": change_multizone,
    "service name": change_service_name,
    "reorder": reorder,
    "connected": connect,
    "health": report_health,
    "broken": break_input,
    "fixed": fix_input,
    "k8s Service": add_k8s_service,
}


class Reader:
    """Documents as a caller hands them over, with a cache as the folder service keeps one."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.cache: dict[tuple[str, str], tuple[Loaded | RawK8s | None, list[Problem]]] = {}

    def __call__(self, docs: dict[str, Doc]) -> Documents:
        resources: list[Loaded] = []
        k8s: list[RawK8s] = []
        problems: list[Problem] = []
        for n, (name, doc) in enumerate(sorted(docs.items()), start=1):
            key = (name, json.dumps(doc, sort_keys=True))
            if self.how == "reparsed":  # one file for all, read again whole
                item, found = parse_document(copy.deepcopy(doc), Origin("all.yaml", n), "default")
            elif key in self.cache:  # one file per document, unchanged: the very same object
                item, found = self.cache[key]
            else:
                item, found = parse_document(copy.deepcopy(doc), Origin(f"{name}.yaml", 1), "default")
                self.cache[key] = item, found
            problems += found
            if isinstance(item, Loaded):
                resources.append(replace(item, origin=Origin("store", n)) if self.how == "store" else item)
            elif isinstance(item, RawK8s):
                k8s.append(item)
        return Documents(tuple(resources), tuple(k8s), tuple(problems))


def build(state: State, docs: Documents, previous: Catalog | None) -> LoadResult:
    return catalog_from_documents(docs, previous=previous, connected=state.connected, health=state.health)


def scratch_state(catalog: Catalog | None) -> Catalog | None:
    """The previous Catalog as a from-scratch build sees it: its VIP state, none of its build's results."""
    return None if catalog is None else replace(catalog, memo=None)


def assert_same(incremental: LoadResult, scratch: LoadResult, step: str) -> None:
    assert incremental.errors == scratch.errors, step
    assert incremental.warnings == scratch.warnings, step
    assert incremental.catalog == scratch.catalog, step
    if incremental.catalog is not None and scratch.catalog is not None:
        assert incremental.catalog.vip_memory == scratch.catalog.vip_memory, step


def run_chain(how: str, edits: list[tuple[str, Edit]], seed: int = 0) -> int:
    """Apply ``edits`` one by one; after each, the incremental chain equals the from-scratch chain."""
    rng = random.Random(seed)
    state = State(base())
    read = Reader(how)
    docs = read(state.docs)
    incremental = scratch = build(state, docs, None)
    assert incremental.catalog is not None, incremental.errors
    last_inc: Catalog | None = incremental.catalog
    last_scratch: Catalog | None = scratch.catalog
    built = 0
    for step, edit in edits:
        edit(state, rng)
        docs = read(state.docs)
        incremental = build(state, docs, last_inc)
        scratch = build(state, docs, scratch_state(last_scratch))
        assert_same(incremental, scratch, step)
        if incremental.catalog is not None:
            built += 1
            last_inc, last_scratch = incremental.catalog, scratch.catalog
    return built


HOW = ["cached", "reparsed", "store"]


@pytest.mark.parametrize("how", HOW)
def test_every_edit_gives_the_catalog_of_a_build_from_scratch(how: str) -> None:
    assert run_chain(how, list(EDITS.items())) >= len(EDITS) - 2  # all but the broken input built


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_give_the_catalog_of_a_build_from_scratch(how: str, seed: int) -> None:
    rng = random.Random(seed)
    names = sorted(set(EDITS) - {"broken"})  # the table test has it; here it would leave most steps unbuilt
    edits = [(name, EDITS[name]) for name in (rng.choice(names) for _ in range(40))]
    assert run_chain(how, edits, seed) == len(edits)


def test_a_failed_build_leaves_the_previous_catalog_usable() -> None:
    """Errors give no Catalog; the next build from the last good one still equals a build from scratch."""
    edits = [("address", EDITS["address"]), ("broken", break_input), ("policy", change_policy), ("fixed", fix_input)]
    assert run_chain("cached", edits) == 2


# --------------------------------------------------------------------------- identity


def every_object(catalog: Catalog) -> dict[tuple[str, str, str], object]:
    """Every resource of the Catalog by (what, mesh, name)."""
    out: dict[tuple[str, str, str], object] = {}
    for name, view in catalog.meshes.items():
        out[("Mesh", name, name)] = view.mesh
        resources: list[Resource] = [
            *view.dataplanes,
            *view.mesh_services,
            *view.multizone_services,
            *view.traffic_permissions,
        ]
        for res in resources:
            out[(res.kind, name, res.name)] = res
        for policy in view.policies:
            out[(policy.kind, name, policy.name)] = policy
    for gen in catalog.hostname_generators:
        out[("HostnameGenerator", "", gen.name)] = gen
    return out


def write_files(folder: Path, docs: dict[str, Doc]) -> None:
    for name, doc in docs.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize("how", ["files", "one file", "store"])
def test_one_moved_dataplane_leaves_every_other_object_the_same(tmp_path: Path, how: str) -> None:
    docs = base()
    if how == "one file":

        def read() -> Documents:
            (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(list(docs.values())))
            return load_documents([tmp_path / "all.yaml"])
    else:
        cache = FileCache()

        def read() -> Documents:
            write_files(tmp_path, docs)
            found = cache.load([tmp_path])
            if how == "store":
                items = tuple(replace(i, origin=Origin("store", n)) for n, i in enumerate(found.resources, start=1))
                found = replace(found, resources=items)
            return found

    before = catalog_from_documents(read()).catalog
    assert before is not None
    docs["21-api-2"]["networking"]["address"] = "10.7.7.7"
    after = catalog_from_documents(read(), previous=before).catalog
    assert after is not None
    old, new = every_object(before), every_object(after)
    assert old.keys() == new.keys()
    changed = {key for key in old if new[key] is not old[key]}
    assert changed == {("Dataplane", "default", "api-2")}
    assert new[("Dataplane", "default", "api-2")] != old[("Dataplane", "default", "api-2")]
    # The view's service tuples are the very same: the translators compare them first.
    for name, view in after.meshes.items():
        assert view.mesh_services is before.meshes[name].mesh_services
        assert view.multizone_services is before.meshes[name].multizone_services
        assert view.policies == before.meshes[name].policies
    assert after.meshes["other"] == before.meshes["other"]
    # And the same Catalog as a build from scratch.
    assert after == catalog_from_documents(read(), previous=scratch_state(before)).catalog


def test_nothing_changed_gives_the_very_same_objects(tmp_path: Path) -> None:
    write_files(tmp_path, base())
    cache = FileCache()
    first = catalog_from_documents(cache.load([tmp_path])).catalog
    assert first is not None
    second = catalog_from_documents(cache.load([tmp_path]), previous=first).catalog
    assert second is not None and cache.reads == len(base())
    old, new = every_object(first), every_object(second)
    assert all(new[key] is old[key] for key in old)
    assert second == first


def test_a_catalog_holds_its_own_build_not_the_ones_before(tmp_path: Path) -> None:
    """What a build replaced is freed with the Catalog before it: the memo keeps one build's results, not a chain."""
    import gc
    import weakref

    docs = base()
    cache = FileCache()
    write_files(tmp_path, docs)
    first = catalog_from_documents(cache.load([tmp_path])).catalog
    assert first is not None
    moved = weakref.ref(every_object(first)[("Dataplane", "default", "api-2")])
    docs["21-api-2"]["networking"]["address"] = "10.7.7.7"
    write_files(tmp_path, docs)
    second = catalog_from_documents(cache.load([tmp_path]), previous=first).catalog  # the cache drops the old one
    assert second is not None and moved() is not None
    del first
    gc.collect()
    assert moved() is None
