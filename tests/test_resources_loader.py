"""Loading: files and folders in path order, multi-document, universal and Kubernetes forms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshxds.resources import load_catalog
from meshxds.resources.errors import Problem, Severity
from meshxds.resources.loader import find_files
from tests.resources.util import MESH_EVERYWHERE, dataplane, errors, meshservice, ok, services, write


def test_problem_is_one_line() -> None:
    p = Problem("examples/x.yaml", 3, "MeshService default/redis", "spec.ports[1].targetPort", "must be ...")
    assert str(p) == "examples/x.yaml: document 3: MeshService default/redis: spec.ports[1].targetPort: must be ..."
    assert str(Problem("a.yaml", None, None, None, "no such file or directory")) == "a.yaml: no such file or directory"
    assert p.is_error and not Problem("a", 1, None, None, "w", Severity.WARNING).is_error


def test_folders_are_read_recursively_in_path_order(tmp_path: Path) -> None:
    write(tmp_path, "b/2.yml", dataplane("second", "127.0.0.2", "{port: 80, tags: {kuma.io/service: a}}"))
    write(tmp_path, "b/1.yaml", dataplane("first", "127.0.0.1", "{port: 81, tags: {kuma.io/service: a}}"))
    write(tmp_path, "a.yaml", MESH_EVERYWHERE + "---\n---\n# only a comment\n")
    write(tmp_path, "c.txt", "not: yaml: at all: [")  # ignored: not .yaml/.yml
    write(tmp_path, "z.yaml", dataplane("third", "127.0.0.3", "{port: 80, tags: {kuma.io/service: a}}"))
    result = load_catalog([tmp_path / "z.yaml", tmp_path, tmp_path / "a.yaml"])  # duplicates read once
    assert result.catalog is not None, [str(e) for e in result.errors]
    view = result.catalog.meshes["default"]
    assert [d.name for d in view.dataplanes] == ["first", "second", "third"]
    assert [p.port for p in view.mesh_services[0].spec.ports] == [81]  # "first" is the oldest


def test_flat_universal_and_spec_forms_are_the_same(tmp_path: Path) -> None:
    flat = ok(
        tmp_path, MESH_EVERYWHERE + "---\n" + dataplane("dp", "127.0.0.1", "{port: 80, tags: {kuma.io/service: a}}")
    )
    nested = ok(
        tmp_path,
        "type: Mesh\nname: default\nspec: {meshServices: {mode: Everywhere}}\n---\n"
        "type: Dataplane\nname: dp\nspec: {networking: {address: 127.0.0.1, "
        "inbound: [{port: 80, tags: {kuma.io/service: a}}]}}\n",
    )
    assert flat == nested
    dp = flat.dataplane("default.dp")
    assert dp is not None and dp.labels == {
        "kuma.io/mesh": "default",
        "kuma.io/origin": "zone",
        "kuma.io/zone": "default",
        "kuma.io/env": "universal",
        "kuma.io/proxy-type": "sidecar",
    }


def test_kumactl_metadata_is_accepted(tmp_path: Path) -> None:
    catalog = ok(tmp_path, "type: Mesh\nname: default\ncreationTime: '2024-01-01T00:00:00Z'\nmodificationTime: x\n")
    assert list(catalog.meshes) == ["default"]


def test_kubernetes_form_mesh_from_label_or_field(tmp_path: Path) -> None:
    text = """
    apiVersion: kuma.io/v1alpha1
    kind: Mesh
    metadata: {name: prod, uid: x, annotations: {a: b}}
    spec: {meshServices: {mode: Exclusive}}
    ---
    apiVersion: kuma.io/v1alpha1
    kind: Dataplane
    mesh: prod
    metadata: {name: api-0, namespace: shop}
    spec:
      networking:
        address: 10.0.0.1
        inbound: [{port: 8080, tags: {kuma.io/service: api}}]
    ---
    apiVersion: kuma.io/v1alpha1
    kind: MeshService
    metadata: {name: api2, namespace: shop, labels: {kuma.io/mesh: prod}}
    spec: {selector: {dataplaneTags: {kuma.io/service: api}}, ports: [{port: 80, targetPort: 8080}]}
    """
    catalog = ok(tmp_path, text)
    view = catalog.meshes["prod"]
    assert view.mesh.spec.mode.value == "Exclusive"
    dp = catalog.dataplane("prod.api-0.shop")
    assert dp is not None and dp.labels["kuma.io/env"] == "kubernetes"
    found = services(catalog, "prod")
    assert sorted(found) == ["api", "api2.shop"]
    api2 = found["api2.shop"]
    assert (api2.display_name, api2.namespace) == ("api2", "shop")
    assert api2.status.addresses == []  # Kubernetes services get no local hostname generator


def test_default_mesh_exists_only_when_no_mesh_is_given(tmp_path: Path) -> None:
    assert list(ok(tmp_path, meshservice("a", "a")).meshes) == ["default"]
    assert errors(tmp_path, "type: Mesh\nname: prod\n---\n" + meshservice("a", "a")) == [
        "in.yaml: document 2: MeshService default/a: mesh: mesh 'default' does not exist"
    ]


def test_a_broken_mesh_does_not_cascade(tmp_path: Path) -> None:
    text = "type: Mesh\nname: prod\nmeshServices: {mode: 7}\n---\n" + meshservice("a", "a").replace(
        "name: a\n", "name: a\nmesh: prod\n"
    )
    assert errors(tmp_path, text) == [
        "in.yaml: document 1: Mesh prod: meshServices.mode: "
        "must be one of 'Disabled', 'Everywhere', 'ReachableBackends' or 'Exclusive'"
    ]


def test_wrong_types_and_odd_yaml_are_clean_errors(tmp_path: Path) -> None:
    text = """
    type: MeshService
    name: 12
    mesh: [x]
    labels: nope
    spec: {ports: [{port: 99999999999999999999999999}]}
    ---
    type: Dataplane
    name: dp
    networking: {address: 1.2.3.4, inbound: [{port: 80x, tags: {kuma.io/service: a}}]}
    ---
    !!python/object:os.system x
    ---
    ? [a, b]
    : c
    """
    lines = errors(tmp_path, text)
    assert lines[:5] == [
        "in.yaml: document 1: MeshService: name: must be a string",
        "in.yaml: document 1: MeshService: mesh: must be a string",
        "in.yaml: document 1: MeshService: labels: must be a mapping",
        "in.yaml: document 1: MeshService: spec.ports[0].port: must be between 1 and 65535",
        "in.yaml: document 2: Dataplane default/dp: networking.inbound[0].port: must be an integer",
    ]
    assert lines[5].startswith("in.yaml: document 3: invalid YAML at line ")
    assert len(lines) == 6  # the stream stops at the first YAML error


def test_duplicate_keys_huge_numbers_and_alias_bombs(tmp_path: Path) -> None:
    assert errors(tmp_path, "type: Mesh\nname: a\nname: b\n") == [
        "in.yaml: document 1: invalid YAML at line 3, column 1: duplicate key 'name'"
    ]
    huge = "type: Mesh\nname: a\nx: " + "9" * 5000 + "\n"
    assert errors(tmp_path, huge) == [
        "in.yaml: document 1: invalid YAML: Exceeds the limit (4300 digits) for integer string conversion"
    ]
    bomb = "type: MeshService\nname: a\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    bomb += "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    bomb += "spec: {ports: *a9}\n"
    # Refused at composition, before validation or any comparison walks the 10^9-node expansion.
    assert errors(tmp_path, bomb) == [
        "in.yaml: document 1: invalid YAML: aliases expand the document beyond 100,000 nodes (refused)"
    ]


def test_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    text = """\
type: MeshService
name: a
spec:
  selector: {dataplaneTags: &tags {app: a, version: v1}}
  ports:
  - {port: 80, targetPort: &target 8080, appProtocol: &proto http}
  - {port: 81, targetPort: *target, appProtocol: *proto}
labels: *tags
"""
    assert services(ok(tmp_path, text))["a"].spec.ports[1].target_port == 8080


def test_recursive_alias_is_an_error(tmp_path: Path) -> None:
    lines = errors(tmp_path, "type: Mesh\nname: a\nx: &a [*a]\n")
    assert lines == ["in.yaml: document 1: invalid YAML: an alias refers to the node that contains it"]


def test_empty_and_unreadable_folders_are_errors(tmp_path: Path) -> None:
    """An empty or unreadable folder would otherwise load as "no resources" and remove every proxy."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [str(p) for p in find_files([empty])[1]] == [f"{empty}: no .yaml or .yml files in this folder"]
    root = tmp_path / "root"
    (root / "locked").mkdir(parents=True)
    (root / "a.yaml").write_text("type: Mesh\nname: a\n")
    (root / "locked" / "b.yaml").write_text("type: Mesh\nname: b\n")
    (root / "locked").chmod(0)
    try:
        if os.access(root / "locked", os.R_OK):
            pytest.skip("running as a user that reads any folder")
        files, problems = find_files([root])
        assert files == [root / "a.yaml"]
        assert [str(p) for p in problems] == [f"{root / 'locked'}: cannot read folder: Permission denied"]
    finally:
        (root / "locked").chmod(0o755)
    (deep,) = errors(tmp_path, "[" * 20000 + "]" * 20000)  # a list (libyaml) or too deep (PyYAML)
    assert deep.startswith("in.yaml: document 1: ")


def test_global_kinds_zone_ingress_and_hostname_generator(tmp_path: Path) -> None:
    text = """
    type: ZoneIngress
    name: ingress-1
    zone: east
    networking: {address: 127.0.0.50, port: 10001, advertisedAddress: 10.0.0.1, advertisedPort: 10001}
    ---
    type: HostnameGenerator
    name: short
    spec:
      selector: {meshService: {matchLabels: {kuma.io/origin: zone}}}
      template: "{{ .DisplayName }}.mesh"
    """
    catalog = ok(tmp_path, text)
    (ingress,) = catalog.zone_ingresses
    assert (ingress.name, ingress.spec.zone, ingress.spec.networking.advertised_port) == ("ingress-1", "east", 10001)
    assert [g.name for g in catalog.hostname_generators] == ["short"]
    assert errors(tmp_path, "type: ZoneIngress\nname: i\nmesh: default\nnetworking: {address: a, port: 1}\n") == [
        "in.yaml: document 1: ZoneIngress i: mesh: unknown field"
    ]
