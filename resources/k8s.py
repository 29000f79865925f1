"""Kubernetes ``v1 Service`` → MeshService, as Kuma's meshservice_controller.go does it.

A Service is considered when it carries ``kuma.io/mesh`` or its Namespace (given in the
input) has ``kuma.io/sidecar-injection: enabled``; its mesh is the Service's ``kuma.io/mesh``
label or annotation, else its Namespace's, else ``default`` (``MeshOfByLabelOrAnnotation``).
ClusterIP Services give one MeshService with the ClusterIP as VIP; headless ones give one
MeshService per endpoint Pod (files carry no Endpoints, so the pods are the Dataplanes whose
inbound tags match the selector).
Non-TCP ports are dropped with a warning, as Kuma's "Ignored unsupported ports" event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from meshxds.resources import model as m
from meshxds.resources.errors import Problem
from meshxds.resources.loader import Loaded, RawK8s, error_message, error_path
from meshxds.resources.match import tags_match

INJECTION_LABEL = "kuma.io/sidecar-injection"
IGNORE_ANNOTATION = "kuma.io/ignore"
SERVICE_NAME_LABEL = "k8s.kuma.io/service-name"
HEADLESS_LABEL = "k8s.kuma.io/is-headless-service"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
GATEWAY_ANNOTATION = "kuma.io/gateway"
ZONE_PROXY_LABEL = "k8s.kuma.io/zone-proxy-type"
# k8s.io/apimachinery rand.SafeEncodeString's alphabet (no vowels, no confusable characters).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_LENGTH = 10


@dataclass(frozen=True)
class Options:
    """Controller settings: with inbound tags disabled Kuma selects by ``dataplaneLabels``."""

    inbound_tags: bool = True
    zone: str = "default"


@dataclass(frozen=True)
class Namespace:
    """What the controller reads from a Namespace: its injection label and its mesh (label, else annotation)."""

    injected: bool
    mesh: str | None


def namespaces(raw: Sequence[RawK8s]) -> dict[str, Namespace]:
    out: dict[str, Namespace] = {}
    for item in raw:
        if item.kind != "Namespace":
            continue
        meta = item.body.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            labels = mapping(meta.get("labels"))
            annotations = mapping(meta.get("annotations"))
            out[meta["name"]] = Namespace(
                injected=labels.get(INJECTION_LABEL) in ("enabled", "true"),
                mesh=mesh_of(labels, annotations),
            )
    return out


def mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def mesh_of(labels: dict[Any, Any], annotations: dict[Any, Any]) -> str | None:
    """``MeshOfByLabelOrAnnotation`` for one object: the ``kuma.io/mesh`` label, else the annotation."""
    for source in (labels, annotations):
        value = source.get(m.MESH_LABEL)
        if isinstance(value, str) and value:
            return value
    return None


def convert(
    raw: Sequence[RawK8s],
    meshes: dict[str, m.Mesh],
    dataplanes: Sequence[m.Dataplane] = (),
    options: Options = Options(),
) -> tuple[list[Loaded], list[Problem]]:
    """Every Service of the input that Kuma would turn into MeshServices."""
    injected = namespaces(raw)
    out: list[Loaded] = []
    problems: list[Problem] = []
    for item in raw:
        if item.kind == "Service":
            made, found = convert_service(item, injected, meshes, dataplanes, options)
            out += made
            problems += found
    return out, problems


def convert_service(
    item: RawK8s,
    injected: dict[str, Namespace],
    meshes: dict[str, m.Mesh],
    dataplanes: Sequence[m.Dataplane],
    options: Options,
) -> tuple[list[Loaded], list[Problem]]:
    svc = item.body
    meta = svc.get("metadata")
    spec = svc.get("spec", {})
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return [], [item.origin.problem("Service", "metadata.name", "is required and must be a string")]
    name: str = meta["name"]
    namespace = meta.get("namespace", "default")
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    what = f"Service {namespace}/{name}"
    if not isinstance(namespace, str) or not isinstance(labels, dict) or not isinstance(annotations, dict):
        return [], [
            item.origin.problem(what, "metadata", "namespace must be a string, labels and annotations mappings")
        ]
    if not isinstance(spec, dict):
        return [], [item.origin.problem(what, "spec", "must be a mapping")]
    ns = injected.get(namespace, Namespace(False, None))
    if m.MESH_LABEL not in labels and not ns.injected:
        return [], []  # not part of any mesh: Kuma ignores it
    # MeshOfByLabelOrAnnotation: the Service's label or annotation, else its Namespace's, else default.
    mesh = mesh_of(labels, annotations) or ns.mesh or "default"
    if mesh not in meshes:
        message = f"skipped: mesh {mesh!r} does not exist (Kuma makes no MeshService)"
        return [], [item.origin.warning(what, f"metadata.labels.{m.MESH_LABEL}", message)]
    if meshes[mesh].spec.mode == m.MeshServicesMode.DISABLED:
        return [], []
    if annotations.get(IGNORE_ANNOTATION) in ("true", True):
        return [], []
    if GATEWAY_ANNOTATION in annotations:
        return [], [
            item.origin.warning(what, f"metadata.annotations.{GATEWAY_ANNOTATION}", "skipped: a gateway Service")
        ]
    if ZONE_PROXY_LABEL in labels:
        return [], [item.origin.warning(what, f"metadata.labels.{ZONE_PROXY_LABEL}", "skipped: a zone proxy Service")]
    cluster_ip = spec.get("clusterIP")
    if not cluster_ip:
        return [], [item.origin.warning(what, "spec.clusterIP", "skipped: the Service has no ClusterIP")]
    ports, problems = service_ports(item, what, spec.get("ports") or [])
    selector = spec.get("selector") or {}
    if not isinstance(selector, dict):
        return [], [*problems, item.origin.problem(what, "spec.selector", "must be a mapping")]
    base_labels = {
        **{str(k): str(v) for k, v in labels.items()},
        m.MESH_LABEL: mesh,
        SERVICE_NAME_LABEL: name,
        m.MANAGED_BY_LABEL: "k8s-controller",
        m.ENV_LABEL: "kubernetes",
    }
    tags = {**{str(k): str(v) for k, v in selector.items()}, m.NAMESPACE_LABEL: namespace}
    if cluster_ip == "None":
        made = headless(item, name, namespace, mesh, base_labels, ports, tags, dataplanes, options.zone)
        return made, problems
    body: dict[str, Any] = {
        "name": f"{name}.{namespace}",
        "mesh": mesh,
        "labels": {**base_labels, HEADLESS_LABEL: "false"} | common_labels(name, namespace, options.zone),
        "spec": {
            "selector": {"dataplaneTags": tags} if options.inbound_tags else {"dataplaneLabels": {"matchLabels": tags}},
            "ports": ports,
        },
        "status": {"vips": [{"ip": str(cluster_ip)}]},
    }
    ms, found = build(item, what, body)
    return ([ms] if ms else []), problems + found


def common_labels(name: str, namespace: str, zone: str) -> dict[str, str]:
    """What the zone control plane adds when it stores a Kubernetes MeshService (compute.go)."""
    return {m.DISPLAY_NAME_LABEL: name, m.NAMESPACE_LABEL: namespace, m.ORIGIN_LABEL: "zone", m.ZONE_LABEL: zone}


def service_ports(item: RawK8s, what: str, raw_ports: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not isinstance(raw_ports, list):
        return [], [item.origin.problem(what, "spec.ports", "must be a list")]
    ports: list[dict[str, Any]] = []
    dropped: list[str] = []
    for i, p in enumerate(raw_ports):
        if not isinstance(p, dict):
            return [], [item.origin.problem(what, f"spec.ports[{i}]", "must be a mapping")]
        protocol = p.get("protocol", "TCP")
        if protocol != "TCP":
            dropped.append(f"{p.get('port')}/{protocol}")
            continue
        number = p.get("port")
        ports.append(
            {
                "name": p.get("name") or f"{number}",
                "port": number,
                "targetPort": p.get("targetPort", number),
                "appProtocol": p.get("appProtocol") or "tcp",
            }
        )
    problems = (
        [item.origin.warning(what, "spec.ports", f"ignored unsupported ports: {', '.join(dropped)}")] if dropped else []
    )
    return ports, problems


def headless(
    item: RawK8s,
    name: str,
    namespace: str,
    mesh: str,
    labels: dict[str, str],
    ports: list[dict[str, Any]],
    selector: dict[str, str],
    dataplanes: Sequence[m.Dataplane],
    zone: str,
) -> list[Loaded]:
    """One MeshService per pod: Kuma reads Endpoints; from files we take the Dataplanes the selector picks."""
    out: list[Loaded] = []
    for dp in dataplanes:
        if dp.mesh != mesh or not any(tags_match(selector, i.tags) for i in dp.networking.inbound):
            continue
        pod = dp.labels.get(m.DISPLAY_NAME_LABEL, dp.name).split(".")[0]
        ms_name = headless_name(pod, name, namespace)
        body = {
            "name": f"{ms_name}.{namespace}",
            "mesh": mesh,
            "labels": {**labels, HEADLESS_LABEL: "true", POD_NAME_LABEL: pod} | common_labels(ms_name, namespace, zone),
            "spec": {"selector": {"dataplaneRef": {"name": dp.name}}, "ports": ports},
            "status": {"vips": [{"ip": dp.networking.address}]},
        }
        ms, _ = build(item, f"Service {namespace}/{name}", body)
        if ms:
            out.append(ms)
    return out


def headless_name(pod: str, service: str, namespace: str) -> str:
    """``<pod>-<hash>`` as the controller names it: FNV-32a of service and namespace (and the pod, when
    the name would pass 63 characters, then truncated), printed as k8s ``SafeEncodeString`` of its decimal.
    """
    data = (service + namespace).encode()
    prefix = pod
    if len(pod) + HASH_LENGTH + 1 > 63:
        data += pod.encode()
        prefix = pod[: 63 - HASH_LENGTH - 1]
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{prefix}-{''.join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in str(h))}"


def build(item: RawK8s, what: str, body: dict[str, Any]) -> tuple[Loaded | None, list[Problem]]:
    try:
        ms = m.MeshService.model_validate(body)
    except ValidationError as e:
        return None, [item.origin.problem(what, error_path(err["loc"]), error_message(err)) for err in e.errors()]
    return Loaded(ms, item.origin), []
