"""Every validation rule, with its exact one-line message (file: document: resource: field: reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resources.util import MESH_EVERYWHERE, errors, load

MS = """
type: MeshService
name: {name}
mesh: default
spec:
  selector:
    dataplaneTags: {{kuma.io/service: redis}}
  ports:
{ports}
"""


def ms(name: str = "redis", ports: str = "    - {port: 6379, targetPort: 6379}") -> str:
    return MS.format(name=name, ports=ports)


POLICY_KINDS = (
    "MeshHTTPRoute, MeshTCPRoute, MeshTimeout, MeshRetry, MeshCircuitBreaker, MeshHealthCheck, "
    "MeshLoadBalancingStrategy"
)

CASES: list[tuple[str, str | list[str]]] = [
    (
        ms(name="a" * 64),
        "in.yaml: document 1: MeshService default/" + "a" * 64 + ": name: must be at most 63 characters long (is 64)",
    ),
    (
        ms(name="Redis_1"),
        "in.yaml: document 1: MeshService default/Redis_1: name: must be a DNS-1035 label: lower-case letters, "
        "digits and '-', starting with a letter and ending with a letter or digit",
    ),
    (
        ms(name="1redis"),
        "in.yaml: document 1: MeshService default/1redis: name: must be a DNS-1035 label: lower-case letters, "
        "digits and '-', starting with a letter and ending with a letter or digit",
    ),
    (
        ms(ports="    - {port: 0, targetPort: 1}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].port: must be between 1 and 65535",
    ),
    (
        ms(ports="    - {port: 65536, targetPort: 1}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].port: must be between 1 and 65535",
    ),
    (
        ms(ports="    - {port: 80, targetPort: 1}\n    - {port: 81, targetPort: 70000}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[1].targetPort: must be between 1 and 65535",
    ),
    (
        ms(ports="    - {port: 80, targetPort: ''}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].targetPort: "
        "must be a port number or a non-empty port name",
    ),
    (
        ms(ports="    - {name: a, port: 80, targetPort: 1}\n    - {name: a, port: 81, targetPort: 1}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[1].name: "
        "duplicate port name 'a' (also spec.ports[0])",
    ),
    (
        ms(ports="    - {name: a, port: 80, targetPort: 1}\n    - {name: b, port: 80, targetPort: 1}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[1].port: duplicate port 80 (also spec.ports[0])",
    ),
    (
        ms(ports="    - {port: 80, targetPort: 1, protocol: tcp}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].protocol: unknown field",
    ),
    (
        ms(ports="    - {port: eighty}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].port: must be an integer",
    ),
    (
        ms(ports="    - {targetPort: 1}"),
        "in.yaml: document 1: MeshService default/redis: spec.ports[0].port: is required",
    ),
    (
        """
        type: MeshService
        name: redis
        spec:
          selector: {dataplaneTags: {a: b}, dataplaneRef: {name: x}}
        """,
        "in.yaml: document 1: MeshService default/redis: spec.selector: "
        "must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels",
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: 127.0.0.1
          inbound:
            - {port: 80, tags: {kuma.io/service: a}}
            - {port: 80, address: 127.0.0.1, tags: {kuma.io/service: b}}
        """,
        "in.yaml: document 1: Dataplane default/dp-1: networking.inbound[1].port: "
        "duplicate inbound 127.0.0.1:80 (also inbound[0])",
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: 127.0.0.1
          inbound: [{port: 80, tags: {version: v1}}]
        """,
        "in.yaml: document 1: Dataplane default/dp-1: networking.inbound[0].tags.kuma.io/service: "
        "tag has to exist when the inbound has tags",
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: 127.0.0.1
          inbound: [{port: 80, tags: {kuma.io/service: a}}]
          outbound: [{port: 1}]
        """,
        "in.yaml: document 1: Dataplane default/dp-1: networking.outbound[0].tags: "
        'mandatory tag "kuma.io/service" is missing',
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: 127.0.0.1
          inbound: [{port: 80, tags: {kuma.io/service: a}, state: Broken}]
        """,
        "in.yaml: document 1: Dataplane default/dp-1: networking.inbound[0].state: "
        "must be one of 'Ready', 'NotReady' or 'Ignored'",
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: 127.0.0.1
          inbound: [{port: 80, tags: {kuma.io/service: a}}]
          transparentProxying: {reachableBackends: {refs: [{kind: MeshService, port: 0}]}}
        """,
        [
            "in.yaml: document 1: Dataplane default/dp-1: "
            "networking.transparentProxying.reachableBackends.refs[0].name: name or labels are required",
            "in.yaml: document 1: Dataplane default/dp-1: "
            "networking.transparentProxying.reachableBackends.refs[0].port: must be between 1 and 65535",
        ],
    ),
    (
        """
        type: Dataplane
        name: dp-1
        networking:
          address: ""
          inbound: [{port: 80, tags: {kuma.io/service: a}}]
          transparentProxying:
            reachableBackends: {refs: [{kind: Service, name: a}, {kind: MeshService}]}
          outbound: [{port: 1, backendRef: {kind: MeshService, name: a, labels: {x: y}}}]
        """,
        [
            "in.yaml: document 1: Dataplane default/dp-1: networking.address: must not be empty",
            "in.yaml: document 1: Dataplane default/dp-1: networking.outbound[0].backendRef.port: "
            "must be between 1 and 65535",
            "in.yaml: document 1: Dataplane default/dp-1: networking.transparentProxying.reachableBackends.refs[0]"
            ".kind: must be one of MeshService, MeshExternalService, MeshMultiZoneService",
            "in.yaml: document 1: Dataplane default/dp-1: networking.transparentProxying.reachableBackends.refs[1]"
            ".name: name or labels are required",
        ],
    ),
    (
        """
        type: Mesh
        name: default
        meshServices: {mode: Sometimes}
        """,
        "in.yaml: document 1: Mesh default: meshServices.mode: "
        "must be one of 'Disabled', 'Everywhere', 'ReachableBackends' or 'Exclusive'",
    ),
    (
        """
        type: Mesh
        name: default
        spec: {meshServices: {mode: Everywhere}}
        bogus: 1
        """,
        "in.yaml: document 1: Mesh default: bogus: unknown field",
    ),
    (
        """
        type: Mesh
        name: default
        meshservices: {mode: Everywhere}
        """,
        "in.yaml: document 1: Mesh default: meshservices: unknown field",
    ),
    (
        "type: Foo\nname: x\n",
        "in.yaml: document 1: type: unknown kind 'Foo': must be one of Mesh, Dataplane, "
        "MeshService, MeshMultiZoneService, HostnameGenerator, ZoneIngress, MeshTrafficPermission, " + POLICY_KINDS,
    ),
    (
        "apiVersion: kuma.io/v1alpha1\nkind: MeshFaultInjection\nmetadata: {name: x}\n",
        "in.yaml: document 1: kind: unknown kind 'MeshFaultInjection': must be one of Mesh, Dataplane, "
        "MeshService, MeshMultiZoneService, HostnameGenerator, ZoneIngress, MeshTrafficPermission, " + POLICY_KINDS,
    ),
    (
        ms() + "---\n" + ms(),
        "in.yaml: document 2: MeshService default/redis: name: duplicate name: already defined in in.yaml: document 1",
    ),
    (
        MESH_EVERYWHERE + "---\n" + ms().replace("mesh: default", "mesh: other"),
        "in.yaml: document 2: MeshService other/redis: mesh: mesh 'other' does not exist",
    ),
    (
        """
        type: MeshMultiZoneService
        name: all-redis
        spec:
          selector: {meshService: {matchLabels: {}}}
          ports: [{port: 6379}]
        """,
        "in.yaml: document 1: MeshMultiZoneService default/all-redis: spec.selector.meshService.matchLabels: "
        "must not be empty",
    ),
    (
        """
        type: MeshMultiZoneService
        name: all-redis
        spec:
          selector: {meshService: {matchLabels: {app: redis}}}
          ports: []
        """,
        "in.yaml: document 1: MeshMultiZoneService default/all-redis: spec.ports: must not be empty",
    ),
    (
        """
        type: MeshMultiZoneService
        name: all-redis
        spec:
          selector: {meshService: {matchLabels: {app: redis}}}
          ports: [{port: 6379, appProtocol: redis}]
        """,
        "in.yaml: document 1: MeshMultiZoneService default/all-redis: spec.ports[0].appProtocol: "
        "must be one of tcp, http, http2, grpc, kafka (is 'redis')",
    ),
    (
        """
        type: HostnameGenerator
        name: hg
        spec:
          selector: {meshService: {matchLabels: {a: b}}}
          template: "{{ .Foo }}.mesh"
        """,
        "in.yaml: document 1: HostnameGenerator hg: spec.template: unsupported action {{ .Foo }}",
    ),
    (
        """
        type: HostnameGenerator
        name: hg
        spec:
          selector: {meshService: {matchLabels: {a: b}}}
          template: "{{ .Name }}_svc.mesh"
        """,
        "in.yaml: document 1: HostnameGenerator hg: spec.template: "
        "must render to a DNS-1123 subdomain (renders as 'stub_svc.mesh' with stub values)",
    ),
    (
        """
        type: HostnameGenerator
        name: hg
        spec:
          selector: {}
          template: "{{ .Name }}.mesh"
        """,
        "in.yaml: document 1: HostnameGenerator hg: spec.selector: "
        "must specify exactly one of: meshService, meshExternalService, meshMultiZoneService",
    ),
    (
        """
        apiVersion: kuma.io/v1alpha1
        kind: MeshService
        metadata: {name: Bad_Name, namespace: ns}
        spec: {selector: {dataplaneTags: {app: x}}}
        """,
        "in.yaml: document 1: MeshService default/Bad_Name.ns: metadata.name: must be a DNS-1035 label: "
        "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
    ),
    (
        """
        apiVersion: kuma.io/v1alpha1
        kind: MeshService
        metadata: {name: redis, labels: {a: 1}}
        spec: {selector: {dataplaneTags: {app: x}}}
        """,
        "in.yaml: document 1: MeshService default/redis: metadata.labels.a: must be a string",
    ),
    (
        """
        apiVersion: kuma.io/v1alpha1
        kind: MeshService
        metadata: {name: redis}
        spec: {selector: {dataplaneTags: {app: x}}}
        extra: 1
        """,
        "in.yaml: document 1: MeshService default/redis: extra: unknown field",
    ),
    ("- a\n- b\n", "in.yaml: document 1: must be a mapping with `type` or `apiVersion`/`kind`, not a list"),
    ("name: x\n", "in.yaml: document 1: has neither `type` (universal form) nor `apiVersion`/`kind` (Kubernetes form)"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_rule_has_its_exact_message(tmp_path: Path, text: str, expected: str | list[str]) -> None:
    assert errors(tmp_path, text) == ([expected] if isinstance(expected, str) else expected)


def test_every_error_of_a_run_is_reported(tmp_path: Path) -> None:
    text = "\n---\n".join(
        [ms(name="Bad_1"), ms(name="ok", ports="    - {port: 0, targetPort: 1}"), "type: Nope", "[1]"]
    )
    lines = errors(tmp_path, text)
    assert [line.split(": ")[1] for line in lines] == ["document 1", "document 2", "document 3", "document 4"]


def test_warnings_do_not_fail_and_errors_clear_the_catalog(tmp_path: Path) -> None:
    result = load(tmp_path, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    assert result.catalog is not None
    assert [str(w).replace(str(tmp_path) + "/", "") for w in result.warnings] == [
        "in.yaml: document 1: apps/v1 Deployment: skipped: not a Kuma resource"
    ]


def test_binary_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "junk.yaml").write_bytes(b"\xff\xfe\x00junk")
    from meshxds.resources import load_catalog

    result = load_catalog([tmp_path / "junk.yaml", tmp_path / "missing.yaml"])
    assert result.catalog is None
    assert sorted(str(e).replace(str(tmp_path) + "/", "") for e in result.errors) == [
        "junk.yaml: not UTF-8 text (byte 0)",
        "missing.yaml: no such file or directory",
    ]


def test_yaml_syntax_errors_name_line_and_column(tmp_path: Path) -> None:
    # The reason text comes from libyaml or PyYAML, whichever is installed; the position is ours.
    (line,) = errors(tmp_path, "type: Mesh\nname: default\n---\na: [1\n")
    assert line.startswith("in.yaml: document 2: invalid YAML at line 5, column 1: ")


def test_name_rule_is_reported_even_when_the_spec_is_broken(tmp_path: Path) -> None:
    assert sorted(errors(tmp_path, ms(name="Bad_1", ports="    - {port: x}"))) == [
        "in.yaml: document 1: MeshService default/Bad_1: name: must be a DNS-1035 label: lower-case letters, "
        "digits and '-', starting with a letter and ending with a letter or digit",
        "in.yaml: document 1: MeshService default/Bad_1: spec.ports[0].port: must be an integer",
    ]
    lines = errors(tmp_path, "type: MeshService\nname: Bad\nlabels: nope\n")
    assert sorted(line.split(": ")[3] for line in lines) == ["labels", "name"]
