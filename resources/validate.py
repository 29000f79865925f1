"""Kuma's validation rules plus the checks a user of plain files needs.

Per resource: MeshService name (≤ 63, DNS-1035), exactly one selector, port ranges,
unique port names and numbers, appProtocol; unique inbound ports per Dataplane;
MeshMultiZoneService and HostnameGenerator rules. Across resources: duplicate names
and resources in a mesh that does not exist. Every problem is returned, never raised.

Stricter than Kuma 2.14 (which only warns on DNS-1035 and does not check appProtocol):
these are errors, as in Kuma HEAD.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshxds.resources import model as m
from meshxds.resources.errors import Problem
from meshxds.resources.hostnames import template_problem
from meshxds.resources.loader import PORT_RANGE, AnyResource, Loaded, resource_id
from meshxds.resources.mtls import check_mtls
from meshxds.resources.mtp import check_mtp
from meshxds.resources.names import check_name
from meshxds.resources.policies import POLICY_KINDS
from meshxds.resources.targeting import check_policy

SELECTORS = "dataplaneTags, dataplaneRef, or dataplaneLabels"
BACKEND_KINDS = ("MeshService", "MeshExternalService", "MeshMultiZoneService")
APP_PROTOCOL = "must be one of " + ", ".join(m.APP_PROTOCOLS)


def check_mesh_service(ms: m.MeshService) -> list[tuple[str, str]]:
    """(field, message) pairs; field paths use Kuma's camelCase names."""
    out: list[tuple[str, str]] = []
    if msg := check_name(ms.display_name):
        out.append(("name", msg))
    sel = ms.spec.selector
    count = sum(x is not None for x in (sel.dataplane_tags, sel.dataplane_ref, sel.dataplane_labels))
    if count > 1:
        out.append(("spec.selector", f"must specify only one of: {SELECTORS}"))
    elif count == 0:
        out.append(("spec.selector", f"must specify one of: {SELECTORS}"))
    out += check_ports(ms.spec.ports, "spec.ports")
    for i, p in enumerate(ms.spec.ports):
        where = f"spec.ports[{i}].targetPort"
        if isinstance(p.target_port, int) and not 1 <= p.target_port <= 65535:
            out.append((where, PORT_RANGE))
        elif isinstance(p.target_port, str) and not p.target_port:
            out.append((where, "must be a port number or a non-empty port name"))
    return out


def check_ports(ports: Sequence[m.Port | m.MultiZonePort], where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    names: dict[str, int] = {}
    numbers: dict[int, int] = {}
    for i, p in enumerate(ports):
        if p.name is not None:
            if p.name in names:
                out.append((f"{where}[{i}].name", f"duplicate port name {p.name!r} (also {where}[{names[p.name]}])"))
            names.setdefault(p.name, i)
        if p.port in numbers:
            out.append((f"{where}[{i}].port", f"duplicate port {p.port} (also {where}[{numbers[p.port]}])"))
        numbers.setdefault(p.port, i)
        if p.app_protocol not in m.APP_PROTOCOLS:
            out.append((f"{where}[{i}].appProtocol", f"{APP_PROTOCOL} (is {p.app_protocol!r})"))
    return out


def check_dataplane(dp: m.Dataplane) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    net = dp.networking
    if not net.address:
        out.append(("spec.networking.address", "must not be empty"))
    if not net.inbound and net.gateway is None:
        out.append(("spec.networking", "must have at least one inbound or a gateway"))
    seen: dict[int, int] = {}
    for i, inbound in enumerate(net.inbound):
        where = f"spec.networking.inbound[{i}]"
        if inbound.port in seen:
            out.append((f"{where}.port", f"duplicate inbound port {inbound.port} (also inbound[{seen[inbound.port]}])"))
        seen.setdefault(inbound.port, i)
        if not inbound.tags.get(m.SERVICE_TAG):
            out.append((f"{where}.tags", f'mandatory tag "{m.SERVICE_TAG}" is missing'))
    for i, outbound in enumerate(net.outbound):
        where = f"spec.networking.outbound[{i}]"
        if (outbound.tags is None) == (outbound.backend_ref is None):
            out.append((where, "must have exactly one of: tags, backendRef"))
        elif outbound.tags is not None and not outbound.tags.get(m.SERVICE_TAG):
            out.append((f"{where}.tags", f'mandatory tag "{m.SERVICE_TAG}" is missing'))
        elif outbound.backend_ref is not None:
            out += check_ref(outbound.backend_ref, f"{where}.backendRef")
    tp = net.transparent_proxying
    if tp is not None and tp.reachable_backends is not None:
        for i, rb in enumerate(tp.reachable_backends.refs):
            out += check_ref(rb, f"spec.networking.transparentProxying.reachableBackends.refs[{i}]")
    return out


def check_ref(ref: m.BackendRef, where: str) -> list[tuple[str, str]]:
    """A reference to a destination: a known kind, and a name or labels (not both)."""
    out: list[tuple[str, str]] = []
    if ref.kind not in BACKEND_KINDS:
        out.append((f"{where}.kind", "must be one of " + ", ".join(BACKEND_KINDS)))
    if not ref.name and not ref.labels:
        out.append((where, "must have a name or labels"))
    elif ref.name and ref.labels:
        out.append((where, "must have either a name or labels, not both"))
    return out


def check_multizone(mzs: m.MeshMultiZoneService) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not mzs.spec.selector.mesh_service.match_labels:
        out.append(("spec.selector.meshService.matchLabels", "must not be empty"))
    if not mzs.spec.ports:
        out.append(("spec.ports", "must not be empty"))
    for i, p in enumerate(mzs.spec.ports):
        if p.name is not None and not p.name:
            out.append((f"spec.ports[{i}].name", "must not be empty"))
    return out + check_ports(mzs.spec.ports, "spec.ports")


def check_hostname_generator(gen: m.HostnameGenerator) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    sel = gen.spec.selector
    count = sum(x is not None for x in (sel.mesh_service, sel.mesh_external_service, sel.mesh_multi_zone_service))
    if count != 1:
        out.append(
            ("spec.selector", "must specify exactly one of: meshService, meshExternalService, meshMultiZoneService")
        )
    if msg := template_problem(gen.spec.template):
        out.append(("spec.template", msg))
    return out


def check_resource(res: AnyResource) -> list[tuple[str, str]]:
    if not res.name:
        return [("name", "must not be empty")]
    if res.kind in POLICY_KINDS:
        return check_policy(res)  # type: ignore[arg-type]
    if isinstance(res, m.MeshService):
        return check_mesh_service(res)
    if isinstance(res, m.Dataplane):
        return check_dataplane(res)
    if isinstance(res, m.MeshMultiZoneService):
        return check_multizone(res)
    if isinstance(res, m.HostnameGenerator):
        return check_hostname_generator(res)
    if isinstance(res, m.MeshTrafficPermission):
        return check_mtp(res)
    if isinstance(res, m.Mesh) and res.spec.mtls is not None:
        return check_mtls(res.spec.mtls, res.name)
    return []


def validate(items: Sequence[Loaded], meshes: set[str]) -> list[Problem]:
    """Every rule over every resource; ``meshes`` are the names of the meshes that exist."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], Loaded] = {}
    for item in items:
        res = item.resource
        what = resource_id(res)
        for field, msg in check_resource(res):
            problems.append(item.origin.problem(what, field, msg))
        mesh = getattr(res, "mesh", "")
        if mesh and mesh not in meshes:
            problems.append(item.origin.problem(what, "mesh", f"mesh {mesh!r} does not exist"))
        key = (res.kind, mesh, res.name)
        if key in seen:
            first = seen[key].origin
            problems.append(
                item.origin.problem(
                    what, "name", f"duplicate name: already defined in {first.file}: document {first.index}"
                )
            )
        else:
            seen[key] = item
    return problems
