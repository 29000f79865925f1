"""Status as Kuma's zone control plane fills it: VIPs, hostnames, dataplaneProxies, state, identities, tls."""

from __future__ import annotations

from pathlib import Path

from meshxds.resources import load_catalog, with_connected
from meshxds.resources.hostnames import TemplateError, render
from tests.resources.util import EXAMPLE, MESH_EVERYWHERE, dataplane, meshservice, ok, services

TWO = (
    MESH_EVERYWHERE
    + "---\n"
    + dataplane("dp-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}", "{port: 81, tags: {kuma.io/service: b}}")
)


def vips(catalog: object, mesh: str = "default") -> dict[str, list[str]]:
    return {ms.name: [v.ip for v in ms.status.vips] for ms in services(catalog, mesh).values()}  # type: ignore[arg-type]


def test_vips_in_load_order_and_given_ones_kept(tmp_path: Path) -> None:
    text = (
        TWO + "---\n" + meshservice("c", "c") + "status: {vips: [{ip: 241.0.0.1}]}\n" + "---\n" + meshservice("d", "d")
    )
    catalog = ok(tmp_path, text)
    # a and b come from dp-1 (document 2), c keeps its VIP, d takes the next free one.
    assert vips(catalog) == {"a": ["241.0.0.0"], "b": ["241.0.0.2"], "c": ["241.0.0.1"], "d": ["241.0.0.3"]}
    assert ok(tmp_path, text) == catalog  # deterministic


def test_previous_catalog_keeps_vips_and_never_reuses_freed_ones(tmp_path: Path) -> None:
    first = ok(tmp_path, TWO)
    assert vips(first) == {"a": ["241.0.0.0"], "b": ["241.0.0.1"]}
    # b disappears, c and d appear before a in load order: a keeps .1, the new ones skip .2 (freed, never reused).
    second_text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane(
            "dp-1",
            "127.0.0.1",
            "{port: 82, tags: {kuma.io/service: c}}",
            "{port: 83, tags: {kuma.io/service: d}}",
            "{port: 80, tags: {kuma.io/service: a}}",
        )
    )
    second = ok(tmp_path, second_text, previous=first)
    assert vips(second) == {"c": ["241.0.0.2"], "d": ["241.0.0.3"], "a": ["241.0.0.0"]}
    # b comes back later: it gets .1 back (a file briefly missing must not move a VIP). Kuma keeps a
    # vanished generated MeshService for its deletion grace period (meshservice/generate/generator.go,
    # deletionGracePeriod / DeletionGracePeriodStartedLabel), so its VIP survives the same way.
    third = ok(tmp_path, TWO, previous=second)
    assert vips(third) == {"a": ["241.0.0.0"], "b": ["241.0.0.1"]}
    assert {"241.0.0.0", "241.0.0.1", "241.0.0.2", "241.0.0.3"} <= third.allocated_vips
    # A new service still never takes a freed address: .4 is next.
    fourth = ok(tmp_path, TWO + "---\n" + meshservice("e", "e"), previous=third)
    assert vips(fourth)["e"] == ["241.0.0.4"]
    # Without `previous` the same input gives the fresh, deterministic answer.
    assert vips(ok(tmp_path, second_text)) == {"c": ["241.0.0.0"], "d": ["241.0.0.1"], "a": ["241.0.0.2"]}


def test_dataplane_proxies_state_identities_and_tls(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}")
        + "---\n"
        + dataplane("a-2", "127.0.0.2", "{port: 80, state: NotReady, tags: {kuma.io/service: a}}")
        + "---\n"
        + dataplane("a-3", "127.0.0.3", "{port: 80, health: {ready: false}, tags: {kuma.io/service: a}}")
        + "---\n"
        + dataplane("b-1", "127.0.0.4", "{port: 80, state: NotReady, tags: {kuma.io/service: b}}")
        + "---\ntype: MeshService\nname: both\n"
        + "spec: {selector: {dataplaneTags: {kuma.io/service: '*'}}, ports: [{port: 80, targetPort: 80}]}\n"
    )
    found = services(ok(tmp_path, text, connected=frozenset({"default.a-1", "default.a-3", "default.zzz"})))
    a, b, both = found["a"], found["b"], found["both"]
    assert a.status.dataplane_proxies is not None and b.status.dataplane_proxies is not None
    # status/updater.go buildDataplaneProxies counts inbound state only: a-3 (health.ready false) is healthy.
    assert a.status.dataplane_proxies.model_dump() == {"connected": 2, "healthy": 2, "total": 3}
    assert a.spec.state.value == "Available"
    assert b.status.dataplane_proxies.model_dump() == {"connected": 0, "healthy": 0, "total": 1}
    assert b.spec.state.value == "Unavailable"
    assert [(i.type, i.value) for i in both.spec.identities or []] == [("ServiceTag", "a"), ("ServiceTag", "b")]
    assert a.status.tls is not None and a.status.tls.status == "NotReady"
    mtls = text.replace(
        "mode: Everywhere", "mode: Everywhere\nmtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin}]}"
    )
    assert services(ok(tmp_path, mtls))["a"].status.tls.status == "Ready"  # type: ignore[union-attr]


def test_selectors_ref_labels_and_named_target_port(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("x-1", "127.0.0.1", "{name: http, port: 8080, tags: {kuma.io/service: x}}")
        + "labels: {app: x}\n"
        + "---\ntype: MeshService\nname: by-ref\n"
        + "spec: {selector: {dataplaneRef: {name: x-1}}, ports: [{port: 80, targetPort: http}]}\n"
        + "---\ntype: MeshService\nname: by-labels\n"
        + "spec: {selector: {dataplaneLabels: {matchLabels: {app: x}}}, ports: [{port: 80, targetPort: web}]}\n"
        + "---\ntype: MeshService\nname: no-match\n"
        + "spec: {selector: {dataplaneTags: {}}, ports: [{port: 80, targetPort: 8080}]}\n"
    )
    found = services(ok(tmp_path, text))
    proxies = {n: ms.status.dataplane_proxies.model_dump() for n, ms in found.items() if ms.status.dataplane_proxies}
    assert proxies["by-ref"] == {"connected": 0, "healthy": 1, "total": 1}  # targetPort "http" = inbound name
    assert proxies["by-labels"] == {"connected": 0, "healthy": 0, "total": 1}  # no inbound named "web"
    assert proxies["no-match"] == {"connected": 0, "healthy": 0, "total": 0}  # empty dataplaneTags match nothing


def test_default_hostnames_and_collisions(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}")
        + "---\ntype: MeshService\nname: a2\nlabels: {kuma.io/display-name: a}\n"
        + "spec: {selector: {dataplaneTags: {kuma.io/service: a}}, ports: [{port: 80, targetPort: 80}]}\n"
    )
    found = services(ok(tmp_path, text))
    a, a2 = found["a"], found["a2"]
    assert [x.hostname for x in a.status.addresses] == ["a.svc.mesh.local"]
    assert a.status.addresses[0].hostname_generator_ref is not None
    assert a.status.addresses[0].hostname_generator_ref.core_name == "local-universal-mesh-service"
    assert a2.status.addresses == []
    cond = a2.status.hostname_generators[0].conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("Generated", "False", "Collision")
    assert cond.message == "Hostname collision with MeshService: a2"  # hostname/generator.go names this service


def test_custom_generators_with_labels_and_template_errors(tmp_path: Path) -> None:
    text = (
        MESH_EVERYWHERE
        + "---\n"
        + dataplane("a-1", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}")
        + "---\ntype: MeshService\nname: b\nlabels: {team: blue}\n"
        + "spec: {selector: {dataplaneTags: {kuma.io/service: b}}, ports: [{port: 80, targetPort: 80}]}\n"
        + "---\ntype: HostnameGenerator\nname: by-team\n"
        + "spec: {selector: {meshService: {matchLabels: {kuma.io/origin: zone}}}, "
        + "template: '{{ .DisplayName }}.{{ label \"team\" }}.{{ .Mesh }}.{{ .Zone }}'}\n"
    )
    found = services(ok(tmp_path, text))
    a, b = found["a"], found["b"]
    assert [x.hostname for x in b.status.addresses] == ["b.blue.default.default", "b.svc.mesh.local"]
    names = [g.hostname_generator_ref.core_name for g in b.status.hostname_generators]
    assert names == ["by-team", "local-universal-mesh-service"]  # sorted by generator name
    failed = a.status.hostname_generators[0]
    assert failed.hostname_generator_ref.core_name == "by-team"
    cond = failed.conditions[0]
    assert (cond.status, cond.reason, cond.message) == ("False", "TemplateError", 'label "team" not found')
    assert [x.hostname for x in a.status.addresses] == ["a.svc.mesh.local"]


def test_template_subset() -> None:
    fields = {"DisplayName": "redis", "Name": "redis.ns", "Namespace": "ns", "Mesh": "m", "Zone": "z"}
    assert render("{{.Name}}-{{ .Namespace }}.{{ label `x` }}.{{- .Zone -}}", fields, {"x": "y"}) == "redis.ns-ns.y.z"
    for bad in ("{{ .Nope }}", '{{ printf "%s" .Name }}', "{{ .Name", "UPPER.case"):
        try:
            render(bad, fields, {})
        except TemplateError:
            continue
        raise AssertionError(f"{bad!r} rendered")


def test_multizone_service_matches_and_gets_a_243_vip(tmp_path: Path) -> None:
    text = (
        TWO
        + "---\ntype: MeshMultiZoneService\nname: all-a\n"
        + "spec: {selector: {meshService: {matchLabels: {kuma.io/display-name: a}}}, ports: [{port: 80}]}\n"
        + "---\ntype: MeshMultiZoneService\nname: none\n"
        + "spec: {selector: {meshService: {matchLabels: {x: y}}}, ports: [{port: 80}]}\n"
    )
    view = ok(tmp_path, text).meshes["default"]
    all_a, none = view.multizone_services
    assert [v.ip for v in all_a.status.vips] == ["243.0.0.0"]
    assert all_a.labels == {"kuma.io/mesh": "default"}  # created on global: no origin/zone labels
    assert all_a.status.addresses == []  # no default hostname generator for it on a zone
    assert [v.ip for v in none.status.vips] == ["243.0.0.1"]
    assert [m.model_dump() for m in all_a.status.mesh_services] == [
        {"name": "a", "namespace": "", "zone": "default", "mesh": "default"}
    ]
    assert none.status.mesh_services == []
    assert [c.reason for c in none.status.conditions] == ["NoMatchesFound"]
    assert [v.ip for v in view.mesh_services[0].status.vips] == ["241.0.0.0"]


def test_example_status() -> None:
    result = load_catalog([EXAMPLE], connected=frozenset({"default.backend-1"}))
    assert result.catalog is not None
    found = services(result.catalog)
    assert vips(result.catalog) == {"web": ["241.0.0.0"], "backend": ["241.0.0.1"], "redis": ["241.0.0.2"]}
    backend = found["backend"].status.dataplane_proxies
    assert backend is not None and backend.model_dump() == {"connected": 1, "healthy": 1, "total": 2}
    assert {n: [a.hostname for a in ms.status.addresses] for n, ms in found.items()} == {
        "web": ["web.svc.mesh.local"],
        "backend": ["backend.svc.mesh.local"],
        "redis": ["redis.svc.mesh.local"],
    }


def test_with_connected_recounts_without_reloading() -> None:
    result = load_catalog([EXAMPLE])
    assert result.catalog is not None
    after = with_connected(result.catalog, frozenset({"default.web-1", "default.web-2", "default.redis-2"}))
    counts = {
        ms.name: ms.status.dataplane_proxies.connected for ms in services(after).values() if ms.status.dataplane_proxies
    }
    assert counts == {"web": 2, "backend": 0, "redis": 1}
    assert with_connected(after, frozenset()) == result.catalog
