"""What a Dataplane's ``backendRef`` / ``reachableBackends`` reference names, and warnings where Kuma silently
resolves nothing (``pkg/xds/context/destination_index.go`` GetReachableBackends,
``pkg/plugins/policies/core/rules/resolve/backendref.go``, ``meshroute/listeners.go``).

A reference with labels picks every MeshService/MeshMultiZoneService of the mesh carrying them;
one with a name picks the local service of that display name in the reference's namespace (else
the proxy's), as Kuma's KRI built from the proxy's zone does. The translators resolve with the same
``refers_to``; this module only adds the warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from meshxds.resources import model as m
from meshxds.resources.catalog import MeshView
from meshxds.resources.errors import Problem
from meshxds.resources.loader import Loaded, resource_id
from meshxds.resources.match import labels_match
from meshxds.resources.memo import Table

Service = m.MeshService | m.MeshMultiZoneService
RESOLVED_KINDS = {"MeshService": m.MeshService, "MeshMultiZoneService": m.MeshMultiZoneService}


def refers_to(res: Service, name: str | None, namespace: str, labels: Mapping[str, str] | None) -> bool:
    """Does a reference (already restricted to ``res``'s kind) name ``res``?"""
    if labels:
        return labels_match(labels, res.labels)
    if name is None or res.display_name != name:
        return False
    return not isinstance(res, m.MeshService) or (res.is_local and res.namespace == namespace)


def resolve(
    services: Iterable[Service], kind: str, name: str | None, namespace: str, labels: Mapping[str, str] | None
) -> list[Service]:
    cls = RESOLVED_KINDS.get(kind)
    if cls is None:
        return []
    return [r for r in services if isinstance(r, cls) and refers_to(r, name, namespace, labels)]


def reference_warnings(view: MeshView, items: Sequence[Loaded], memo: Table | None = None) -> list[Problem]:
    """One warning per reference that resolves to nothing, or whose port matches no port of a service it names.

    ``memo`` keeps each Dataplane's findings while it and the mesh's services are the same objects.
    """
    services: tuple[Service, ...] = (*view.mesh_services, *view.multizone_services)
    out: list[Problem] = []
    mesh = view.name
    for item in items:
        dp = item.resource
        if not isinstance(dp, m.Dataplane) or dp.mesh != mesh:
            continue
        tp = dp.networking.transparent_proxying
        if not dp.networking.outbound and not (tp and tp.reachable_backends):
            continue  # nothing to resolve
        make = partial(dataplane_references, dp, services)
        found = memo.get(id(dp), (dp, view.mesh_services, view.multizone_services), make) if memo else make()
        what = resource_id(dp)
        out += [item.origin.warning(what, field, message) for field, message in found]
    return out


def dataplane_references(dp: m.Dataplane, services: Sequence[Service]) -> tuple[tuple[str, str], ...]:
    """(field, message) for each of ``dp``'s references that resolves to nothing or to no port."""
    namespace = dp.labels.get(m.NAMESPACE_LABEL, "")
    out: list[tuple[str, str]] = []
    for i, o in enumerate(dp.networking.outbound):
        ref = o.backend_ref
        if ref is None or ref.kind not in RESOLVED_KINDS:
            continue
        where = f"spec.networking.outbound[{i}].backendRef"
        found = resolve(services, ref.kind, ref.name, namespace, ref.labels)
        if not found:
            out.append((where, f"names no {ref.kind}: Kuma skips this outbound"))
        elif ref.port is not None and m.find_port(found[0], str(ref.port)) is None:
            message = f"port {ref.port} matches no port of {found[0].kind} {found[0].name}: Kuma skips this outbound"
            out.append((f"{where}.port", message))
    tp = dp.networking.transparent_proxying
    for i, rb in enumerate(tp.reachable_backends.refs if tp and tp.reachable_backends else []):
        if rb.kind not in RESOLVED_KINDS:
            continue
        where = f"spec.networking.transparentProxying.reachableBackends.refs[{i}]"
        found = resolve(services, rb.kind, rb.name, rb.namespace or namespace, rb.labels)
        if not found:
            out.append((where, f"selects no {rb.kind}"))
        for res in found if rb.port is not None else []:
            if m.find_port(res, str(rb.port)) is None:
                message = f"port {rb.port} matches no port of {res.kind} {res.name}: Kuma selects all its ports"
                out.append((f"{where}.port", message))
    return tuple(out)
