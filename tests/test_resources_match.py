"""One Dataplane index and one set of selector rules for status and endpoints.

Kuma: pkg/core/resources/apis/meshservice/match.go (``MatchDataplanesWithMeshServices`` with
``matchOnlyHealthy``: the status updater counts every inbound, the endpoints only healthy ones;
a Dataplane without such inbounds is not indexed) and api/common/v1alpha1/selector.go
(``LabelSelector.Matches``: exact values, no wildcard; tag selectors accept ``*``).
"""

from __future__ import annotations

from pathlib import Path

from meshxds.resources.match import DataplaneIndex, labels_match, tags_match
from tests.resources.util import MESH_EVERYWHERE, dataplane, ok, services


def test_label_selector_is_exact_and_tag_selector_has_a_wildcard() -> None:
    assert labels_match({"app": "x"}, {"app": "x", "v": "1"})
    assert not labels_match({"app": "*"}, {"app": "x"})  # no wildcard for labels
    assert not labels_match({"app": "x"}, {})
    assert tags_match({"app": "*"}, {"app": "x"})
    assert not tags_match({"app": "*"}, {})


def test_status_index_counts_every_inbound_and_endpoint_index_only_healthy_ones(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("up-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: x}}")
        + "labels: {app: x}\n"
        + "---\n"
        + dataplane("down-1", "127.0.0.2", "{port: 80, state: NotReady, tags: {kuma.io/service: x}}")
        + "labels: {app: x}\n"
        + "---\ntype: MeshService\nname: by-tags\n"
        + "spec: {selector: {dataplaneTags: {kuma.io/service: x}}, ports: [{port: 80, targetPort: 80}]}\n"
        + "---\ntype: MeshService\nname: by-labels\n"
        + "spec: {selector: {dataplaneLabels: {matchLabels: {app: x}}}, ports: [{port: 80, targetPort: 80}]}\n"
        + "---\ntype: MeshService\nname: by-ref\n"
        + "spec: {selector: {dataplaneRef: {name: down-1}}, ports: [{port: 80, targetPort: 80}]}\n"
    )
    catalog = ok(tmp_path, text)
    dps = catalog.meshes["default"].dataplanes
    found = services(catalog)
    every, healthy = DataplaneIndex(dps), DataplaneIndex(dps, only_healthy=True)
    for name in ("by-tags", "by-labels"):
        assert [dp.name for dp in every.selected(found[name])] == ["up-1", "down-1"], name
        assert [dp.name for dp in healthy.selected(found[name])] == ["up-1"], name
    assert [dp.name for dp in every.selected(found["by-ref"])] == ["down-1"]
    assert healthy.selected(found["by-ref"]) == []  # no healthy inbound: not indexed
    proxies = found["by-tags"].status.dataplane_proxies
    assert proxies is not None and (proxies.total, proxies.healthy) == (2, 1)


def test_select_each_updated_from_the_previous_selection_picks_what_the_index_picks() -> None:
    """``select_each`` matches only the Dataplanes that came since ``previous``; the answer is the index's."""
    import random

    from meshxds.resources import model as m
    from meshxds.resources.match import select_each

    def dp(name: str, service: str, app: str) -> m.Dataplane:
        inbound = [{"port": 80, "tags": {"kuma.io/service": service, "v": name[-1]}}]
        body = {
            "name": name,
            "labels": {"app": app},
            "spec": {"networking": {"address": "1.1.1.1", "inbound": inbound}},
        }
        return m.Dataplane.model_validate(body)

    selectors = {
        "tags": m.Selector(dataplane_tags={"kuma.io/service": "a"}),
        "wildcard": m.Selector(dataplane_tags={"kuma.io/service": "*", "v": "1"}),
        "labels": m.Selector.model_validate({"dataplaneLabels": {"matchLabels": {"app": "x"}}}),
        "ref": m.Selector.model_validate({"dataplaneRef": {"name": "dp-3"}}),
    }
    rng = random.Random(7)
    pool = [dp(f"dp-{n}", rng.choice("ab"), rng.choice("xy")) for n in range(12)]
    dps = tuple(pool[:6])
    previous = select_each(selectors, dps)
    for _ in range(30):
        edit = rng.choice(["add", "remove", "replace", "shuffle", "same"])
        items = list(dps)
        if edit == "add":
            items.insert(rng.randrange(len(items) + 1), rng.choice(pool))
        elif edit == "remove" and len(items) > 1:
            items.pop(rng.randrange(len(items)))
        elif edit == "replace":
            n = rng.randrange(len(items))
            items[n] = dp(items[n].name, rng.choice("ab"), rng.choice("xy"))
        elif edit == "shuffle":
            rng.shuffle(items)
        items = list({id(d): d for d in items}.values())  # each object once
        dps = tuple(items)
        current = select_each(selectors, dps, previous)
        index = DataplaneIndex(dps)
        for key, selector in selectors.items():
            assert current.picked[key][1] == tuple(d for d, _ in index.select(selector)), (edit, key)
        previous = current
