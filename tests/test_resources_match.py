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
