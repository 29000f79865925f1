"""Validation of targeting resources, resolution of their references, and Kuma's default policies.

One implementation of each Kuma rule, shared by ``load_catalog`` (which turns what does not
resolve into warnings naming resource and field) and the translators (which drop it):

- ``check_policy``: Kuma's ``validation.go`` rules per kind (``ValidateTargetRef``, backendRef kinds,
  filters, durations), as (field, message) pairs.
- ``resolve_backend``: ``resolve.BackendRef`` (``core/rules/resolve/backendref.go``): a MeshService ref is
  a real one only with ``port``/``sectionName``, otherwise legacy ``kuma.io/service``; ``labels`` pick
  the oldest match (load order stands in for creation time).
- ``resolve_to``: ``resolve.TargetRef`` (``targetref.go``): ``labels`` select every match; ``sectionName``
  must equal a port's name (the number as a string for an unnamed port).
- ``default_policies``: ``pkg/defaults/mesh/*.go``, left out per ``skipCreatingInitialPolicies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshxds.resources import model as m
from meshxds.resources import policies as p
from meshxds.resources.errors import Problem

TOP_KINDS = ("Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "Dataplane")
ROUTE_TO_KINDS = ("MeshService", "MeshExternalService", "MeshMultiZoneService")
POLICY_TO_KINDS = ("Mesh", "MeshService", "MeshExternalService", "MeshMultiZoneService", "MeshHTTPRoute")
BACKEND_KINDS = ("MeshService", "MeshServiceSubset", "MeshExternalService", "MeshMultiZoneService")
MIRROR_KINDS = ("MeshService", "MeshServiceSubset")
DEFAULT_POLICY_KINDS = ("MeshTimeout", "MeshCircuitBreaker", "MeshRetry")

Issues = list[tuple[str, str]]


# --------------------------------------------------------------------------- validation


def check_top_ref(ref: p.TargetRef | None, where: str) -> Issues:
    """``ValidateTargetRef`` for a top-level targetRef (which proxies the policy applies to)."""
    if ref is None:
        return []
    out: Issues = []
    if ref.kind not in TOP_KINDS:
        return [(f"{where}.kind", "must be one of " + ", ".join(TOP_KINDS))]
    if ref.kind == "Mesh":
        for name in ("name", "namespace", "labels", "tags", "section_name"):
            if getattr(ref, name) is not None:
                out.append((f"{where}.{alias(name)}", "must not be set with kind Mesh"))
    elif ref.kind == "Dataplane":
        if ref.name and ref.labels:
            out.append((where, "must have either a name or labels, not both"))
    elif ref.kind == "MeshSubset":
        if ref.name is not None:
            out.append((f"{where}.name", "must not be set with kind MeshSubset"))
    elif not ref.name:
        out.append((f"{where}.name", f"is required with kind {ref.kind}"))
    return out


def check_to_ref(ref: p.TargetRef, where: str, kinds: Sequence[str]) -> Issues:
    """A ``to[].targetRef``: a destination by name (+namespace, sectionName) or by labels."""
    if ref.kind not in kinds:
        return [(f"{where}.kind", "must be one of " + ", ".join(kinds))]
    out: Issues = []
    if ref.kind == "Mesh":
        for name in ("name", "namespace", "labels", "section_name"):
            if getattr(ref, name) is not None:
                out.append((f"{where}.{alias(name)}", "must not be set with kind Mesh"))
        return out
    out += check_named(ref, where)
    if ref.proxy_types is not None:
        out.append((f"{where}.proxyTypes", "must not be set in to[]"))
    return out


def check_named(ref: p.TargetRef, where: str) -> Issues:
    """Kuma: ``name or labels must be set``, ``either labels or name and namespace``; no mesh or tags."""
    out: Issues = []
    if ref.kind == "MeshServiceSubset":
        if not ref.name:
            out.append((f"{where}.name", "is required with kind MeshServiceSubset"))
        return out
    if not ref.name and not ref.labels:
        out.append((where, f"name or labels must be set when kind is {ref.kind}"))
    elif ref.labels and (ref.name or ref.namespace):
        out.append((where, "either labels or name and namespace must be specified"))
    if ref.mesh is not None:
        out.append((f"{where}.mesh", "must not be set"))
    if ref.tags is not None:
        out.append((f"{where}.tags", f"must not be set with kind {ref.kind}"))
    return out


def check_backend(ref: p.PolicyBackendRef, where: str) -> Issues:
    if ref.kind not in BACKEND_KINDS:
        return [(f"{where}.kind", "must be one of " + ", ".join(BACKEND_KINDS))]
    out = check_named(ref, where)
    if ref.kind == "MeshMultiZoneService" and ref.port is None:
        out.append((f"{where}.port", "is required with kind MeshMultiZoneService"))
    if ref.proxy_types is not None:
        out.append((f"{where}.proxyTypes", "must not be set"))
    return out


def check_durations(conf: object, where: str) -> Issues:
    """Every ``str`` field of a ``default`` whose name says it is a duration must parse as a Go duration."""
    out: Issues = []
    if not isinstance(conf, m.Strict):
        return out
    for name, info in type(conf).model_fields.items():
        value = getattr(conf, name)
        key = f"{where}.{info.alias or name}"
        if isinstance(value, m.Strict):
            out += check_durations(value, key)
        elif isinstance(value, str) and is_duration_field(name) and p.parse_duration(value) is None:
            out.append((key, f"must be a duration such as 5s, 1m30s or 500ms (is {value!r})"))
        elif isinstance(value, str) and is_duration_field(name) and (p.parse_duration(value) or 0) < 0:
            out.append((key, "must not be negative"))
    return out


def is_duration_field(name: str) -> bool:
    return name.endswith(("timeout", "interval", "duration", "time", "jitter")) and name != "interval_jitter_percent"


def check_http_route(route: p.MeshHTTPRoute) -> Issues:
    out = check_top_ref(route.spec.target_ref, "spec.targetRef")
    for i, to in enumerate(route.spec.to):
        where = f"spec.to[{i}]"
        out += check_to_ref(to.target_ref, f"{where}.targetRef", ROUTE_TO_KINDS)
        if to.hostnames is not None:
            out.append((f"{where}.hostnames", "is only valid when the top-level targetRef is a MeshGateway"))
        for j, rule in enumerate(to.rules):
            rw = f"{where}.rules[{j}]"
            prefix_only = all(x.path is not None and x.path.type == "PathPrefix" for x in rule.matches)
            for k, match in enumerate(rule.matches):
                path = match.path
                if path is not None and path.type != "RegularExpression" and not path.value.startswith("/"):
                    out.append((f"{rw}.matches[{k}].path.value", "must be an absolute path (start with /)"))
            for k, ref in enumerate(rule.default.backend_refs or ()):
                out += check_backend(ref, f"{rw}.default.backendRefs[{k}]")
            for k, flt in enumerate(rule.default.filters or ()):
                out += check_filter(flt, f"{rw}.default.filters[{k}]", prefix_only)
    return out


FILTER_FIELDS = {
    "RequestHeaderModifier": "request_header_modifier",
    "ResponseHeaderModifier": "response_header_modifier",
    "RequestRedirect": "request_redirect",
    "URLRewrite": "url_rewrite",
    "RequestMirror": "request_mirror",
}


def check_filter(flt: p.Filter, where: str, prefix_only: bool) -> Issues:
    """The block named by ``type`` must be set (and only that one); ReplacePrefixMatch needs PathPrefix matches."""
    out: Issues = []
    wanted = FILTER_FIELDS[flt.type]
    for name in FILTER_FIELDS.values():
        field_alias = alias(name)
        if name == wanted and getattr(flt, name) is None:
            out.append((f"{where}.{field_alias}", f"must be set when type is {flt.type}"))
        elif name != wanted and getattr(flt, name) is not None:
            out.append((f"{where}.{field_alias}", f"must not be set when type is {flt.type}"))
    path = flt.request_redirect.path if flt.request_redirect else flt.url_rewrite.path if flt.url_rewrite else None
    if path is not None:
        pw = f"{where}.{alias(wanted)}.path"
        if path.type == "ReplaceFullPath" and path.replace_full_path is None:
            out.append((f"{pw}.replaceFullPath", "must be set when type is ReplaceFullPath"))
        if path.type == "ReplacePrefixMatch" and path.replace_prefix_match is None:
            out.append((f"{pw}.replacePrefixMatch", "must be set when type is ReplacePrefixMatch"))
        if path.replace_prefix_match is not None and not prefix_only:
            out.append((f"{pw}.replacePrefixMatch", "can only appear if all matches match a path prefix"))
    if flt.url_rewrite is not None and flt.url_rewrite.host_to_backend_hostname:
        # Kuma: only under a MeshGateway, which meshxds does not serve
        out.append((f"{where}.urlRewrite.hostToBackendHostname", "can only be set with MeshGateway"))
    if flt.request_mirror is not None:
        ref = flt.request_mirror.backend_ref
        if ref.kind not in MIRROR_KINDS:
            out.append((f"{where}.requestMirror.backendRef.kind", "must be one of " + ", ".join(MIRROR_KINDS)))
        else:
            out += check_backend(ref, f"{where}.requestMirror.backendRef")
    return out


def check_tcp_route(route: p.MeshTCPRoute) -> Issues:
    out = check_top_ref(route.spec.target_ref, "spec.targetRef")
    for i, to in enumerate(route.spec.to):
        out += check_to_ref(to.target_ref, f"spec.to[{i}].targetRef", ROUTE_TO_KINDS)
        for j, rule in enumerate(to.rules):
            for k, ref in enumerate(rule.default.backend_refs or ()):
                out += check_backend(ref, f"spec.to[{i}].rules[{j}].default.backendRefs[{k}]")
    return out


def check_policy(res: p.AnyPolicy) -> Issues:
    """Per-kind rules; cross-resource references are checked later (``reference_problems``)."""
    if isinstance(res, p.MeshHTTPRoute):
        return check_http_route(res)
    if isinstance(res, p.MeshTCPRoute):
        return check_tcp_route(res)
    out = check_top_ref(res.spec.target_ref, "spec.targetRef")
    for i, to in enumerate(to_entries(res)):
        out += check_to_ref(to.target_ref, f"spec.to[{i}].targetRef", POLICY_TO_KINDS)
        out += check_durations(to.default, f"spec.to[{i}].default")
    return out


def to_entries(policy: p.AnyPolicy) -> list[Any]:
    """``spec.to`` of any kind (each kind has its own entry type; all have ``targetRef``)."""
    return list(policy.spec.to)


def alias(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


# --------------------------------------------------------------------------- resolution


Service = m.MeshService | m.MeshMultiZoneService


@dataclass(frozen=True)
class Backend:
    """A resolved backendRef: a real port (``service`` + ``port``) or legacy tags (``kuma.io/service`` ...)."""

    weight: int
    service: Service | None = None
    port: m.Port | m.MultiZonePort | None = None
    legacy: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Target:
    """A resolved ``to[].targetRef``: the Mesh, a real service (optionally one port), or a legacy service."""

    kind: str  # "Mesh", "MeshService", "MeshMultiZoneService", "Legacy", "MeshHTTPRoute"
    service: Service | None = None
    section: str = ""
    legacy: str = ""


def pool(view_services: Sequence[m.MeshService], view_mz: Sequence[m.MeshMultiZoneService], kind: str) -> list[Service]:
    if kind == "MeshService":
        return list(view_services)
    if kind == "MeshMultiZoneService":
        return list(view_mz)
    return []


def by_labels(candidates: Sequence[Service], labels: dict[str, str]) -> list[Service]:
    return [s for s in candidates if all(s.labels.get(k) == v for k, v in labels.items())]


def by_name(candidates: Sequence[Service], policy: p.Policy, ref: p.TargetRef) -> list[Service]:
    """``TargetRefToKRI``: mesh and zone of the origin policy, namespace of the ref else of the policy."""
    namespace = ref.namespace if ref.namespace is not None else policy.namespace
    out: list[Service] = []
    for s in candidates:
        if s.display_name != ref.name:
            continue
        if isinstance(s, m.MeshService) and (s.namespace != namespace or s.zone != policy.zone):
            continue
        out.append(s)
    return out


def find_port(service: Service, section: str) -> m.Port | m.MultiZonePort | None:
    """``FindPortByName``: by name or by the number as a string."""
    for port in service.spec.ports:
        if port.name == section or str(port.port) == section:
            return port
    return None


@dataclass(frozen=True)
class Resolution:
    """What a ref resolved to, and why not (a warning message) when it did not."""

    backends: tuple[Backend, ...] = ()
    problem: str = ""
    # Kuma resolves a ref by name to a KRI without looking it up, so an unknown name or port still counts as a
    # backend (its split drops later and the route is skipped); only a labels selector matching nothing is dropped.
    dead: bool = False


def resolve_backend(
    services: Sequence[m.MeshService],
    multizone: Sequence[m.MeshMultiZoneService],
    policy: p.Policy,
    ref: p.PolicyBackendRef,
) -> Resolution:
    """Kuma's ``resolve.BackendRef``; weight 0 keeps the backend here (the split drops it)."""
    weight = 1 if ref.weight is None else ref.weight
    if ref.kind not in ("MeshService", "MeshMultiZoneService") or not ref.references_real_object():
        if ref.kind == "MeshExternalService":
            return Resolution(problem="MeshExternalService is not modelled by meshxds: the backend is dropped")
        tags = {m.SERVICE_TAG: ref.name or "", **(ref.tags or {})}
        return Resolution((Backend(weight, legacy=tuple(sorted(tags.items()))),))
    candidates = pool(services, multizone, ref.kind)
    if ref.labels:
        found = by_labels(candidates, ref.labels)
        what = f"{ref.kind} with labels {ref.labels}"
    else:
        found = by_name(candidates, policy, ref)
        what = f"{ref.kind} {ref.name!r}" + (f" in namespace {ref.namespace!r}" if ref.namespace else "")
    if not found:
        return Resolution(problem=f"{what} does not exist: the backend is dropped", dead=not ref.labels)
    service = found[0]  # the oldest (first loaded)
    section = ref.section_name or str(ref.port)
    port = find_port(service, section)
    note = ""
    if len(found) > 1:
        names = ", ".join(s.name for s in found)
        note = f"{what} matches {len(found)} resources ({names}): the oldest, {service.name}, is used"
    if port is None:
        message = f"{service.kind} {service.name!r} has no port {section!r}: the backend is dropped"
        return Resolution(problem=message, dead=True)
    return Resolution((Backend(weight, service, port),), note)


def resolve_to(
    services: Sequence[m.MeshService],
    multizone: Sequence[m.MeshMultiZoneService],
    policy: p.Policy,
    ref: p.TargetRef,
) -> tuple[list[Target], str]:
    """Kuma's ``resolve.TargetRef`` for ``to[]``: every match by labels; a name without a real service is legacy."""
    if ref.kind == "Mesh":
        return [Target("Mesh")], ""
    if ref.kind == "MeshHTTPRoute":
        return [Target("MeshHTTPRoute", legacy=ref.name or "")], ""
    candidates = pool(services, multizone, ref.kind)
    if ref.labels:
        found = by_labels(candidates, ref.labels)
    else:
        found = by_name(candidates, policy, ref)
        if not found and ref.kind == "MeshService" and ref.name and not ref.section_name:
            return [Target("Legacy", legacy=ref.name)], ""
    if not found:
        return [], f"{ref.kind} {ref.name or ref.labels!r} does not exist: the entry applies to nothing"
    if not ref.section_name:
        return [Target(s.kind, s) for s in found], ""
    targets = [Target(s.kind, s, ref.section_name) for s in found if has_section(s, ref.section_name)]
    if not targets:
        return [], f"no selected {ref.kind} has a port named {ref.section_name!r}: the entry applies to nothing"
    return targets, ""


def has_section(service: Service, section: str) -> bool:
    """``query.findPort``: ``sectionName`` equals ``Port.GetName()`` (name, else the number)."""
    return any(port.section_name == section for port in service.spec.ports)


# --------------------------------------------------------------------------- references → warnings


def reference_problems(
    policy: p.AnyPolicy,
    mesh: m.Mesh,
    services: Sequence[m.MeshService],
    multizone: Sequence[m.MeshMultiZoneService],
    warn: type[Problem] | None = None,
) -> list[tuple[str, str]]:
    """(field, message) for every reference that resolves to nothing, to several, or to a legacy service
    in an Exclusive mesh (the seeds' migration step 3)."""
    out: list[tuple[str, str]] = []
    exclusive = mesh.spec.mode == m.MeshServicesMode.EXCLUSIVE
    for i, to in enumerate(to_entries(policy)):
        where = f"spec.to[{i}].targetRef"
        targets, problem = resolve_to(services, multizone, policy, to.target_ref)
        if problem:
            out.append((where, problem))
        if exclusive and any(t.kind == "Legacy" for t in targets):
            out.append((where, legacy_in_exclusive(to.target_ref.name or "")))
        rules = getattr(to, "rules", None) or []
        for j, rule in enumerate(rules):
            refs = rule.default.backend_refs or []
            for k, ref in enumerate(refs):
                out += backend_problems(
                    services, multizone, policy, ref, f"spec.to[{i}].rules[{j}].default.backendRefs[{k}]", exclusive
                )
    return out


def backend_problems(
    services: Sequence[m.MeshService],
    multizone: Sequence[m.MeshMultiZoneService],
    policy: p.Policy,
    ref: p.PolicyBackendRef,
    where: str,
    exclusive: bool,
) -> list[tuple[str, str]]:
    res = resolve_backend(services, multizone, policy, ref)
    out = [(where, res.problem)] if res.problem else []
    if exclusive and any(b.legacy for b in res.backends):
        out.append((where, legacy_in_exclusive(ref.name or "")))
    return out


def legacy_in_exclusive(name: str) -> str:
    return (
        f"refers to kuma.io/service {name!r} (no port or sectionName), which an Exclusive mesh does not serve: "
        "refer to the MeshService with its port (migration step 3)"
    )


# --------------------------------------------------------------------------- defaults


def default_policies(mesh: m.Mesh, zone: str) -> list[p.AnyPolicy]:
    """The policies Kuma creates with a new Mesh (``pkg/defaults/mesh``), minus ``skipCreatingInitialPolicies``."""
    skip = set(mesh.spec.skip_creating_initial_policies or ())
    if "*" in skip:
        return []
    labels = {
        m.MESH_LABEL: mesh.name,
        m.ORIGIN_LABEL: "zone",
        m.ZONE_LABEL: zone,
        m.ENV_LABEL: "universal",
        "kuma.io/policy-role": "system",
    }
    sidecar = {"kind": "Mesh", "proxyTypes": ["Sidecar"]}
    made: list[p.AnyPolicy] = []
    if "MeshTimeout" not in skip:
        made.append(
            p.MeshTimeout.model_validate(
                {
                    "name": f"mesh-gateways-timeout-all-{mesh.name}",
                    "mesh": mesh.name,
                    "labels": labels,
                    "spec": {
                        "targetRef": {"kind": "Mesh", "proxyTypes": ["Gateway"]},
                        "from": [
                            {
                                "targetRef": {"kind": "Mesh"},
                                "default": {
                                    "idleTimeout": "5m0s",
                                    "http": {"streamIdleTimeout": "5s", "requestHeadersTimeout": "500ms"},
                                },
                            }
                        ],
                        "to": [
                            {
                                "targetRef": {"kind": "Mesh"},
                                "default": {"idleTimeout": "1h0m0s", "http": {"streamIdleTimeout": "5s"}},
                            }
                        ],
                    },
                }
            )
        )
        made.append(
            p.MeshTimeout.model_validate(
                {
                    "name": f"mesh-timeout-all-{mesh.name}",
                    "mesh": mesh.name,
                    "labels": labels,
                    "spec": {
                        "targetRef": sidecar,
                        "from": [
                            {
                                "targetRef": {"kind": "Mesh"},
                                "default": {
                                    "connectionTimeout": "10s",
                                    "idleTimeout": "2h0m0s",
                                    "http": {
                                        "requestTimeout": "0s",
                                        "streamIdleTimeout": "1h0m0s",
                                        "maxStreamDuration": "0s",
                                    },
                                },
                            }
                        ],
                        "to": [
                            {
                                "targetRef": {"kind": "Mesh"},
                                "default": {
                                    "connectionTimeout": "5s",
                                    "idleTimeout": "1h0m0s",
                                    "http": {"requestTimeout": "15s", "streamIdleTimeout": "30m0s"},
                                },
                            }
                        ],
                    },
                }
            )
        )
    if "MeshCircuitBreaker" not in skip:
        limits = {"maxConnections": 1024, "maxPendingRequests": 1024, "maxRequests": 1024, "maxRetries": 3}
        made.append(
            p.MeshCircuitBreaker.model_validate(
                {
                    "name": f"mesh-circuit-breaker-all-{mesh.name}",
                    "mesh": mesh.name,
                    "labels": labels,
                    "spec": {
                        "targetRef": {"kind": "Mesh"},
                        "to": [{"targetRef": {"kind": "Mesh"}, "default": {"connectionLimits": limits}}],
                    },
                }
            )
        )
    if "MeshRetry" not in skip:
        backoff = {"baseInterval": "25ms", "maxInterval": "250ms"}
        retry = {"numRetries": 5, "perTryTimeout": "16s", "backOff": backoff}
        made.append(
            p.MeshRetry.model_validate(
                {
                    "name": f"mesh-retry-all-{mesh.name}",
                    "mesh": mesh.name,
                    "labels": labels,
                    "spec": {
                        "targetRef": {"kind": "Mesh"},
                        "to": [
                            {
                                "targetRef": {"kind": "Mesh"},
                                "default": {"tcp": {"maxConnectAttempt": 5}, "http": retry, "grpc": retry},
                            }
                        ],
                    },
                }
            )
        )
    return made
