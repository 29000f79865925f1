"""Kuma resources → an immutable Catalog: load, validate, generate MeshServices, fill status.

``load_catalog`` is the one entry point: it never raises on bad input; every problem
comes back in ``LoadResult.errors`` / ``warnings`` naming file, document, resource and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from meshxds.resources import model as m
from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.errors import Origin, Problem, Severity
from meshxds.resources.generate import Grace, generate, lingering, managed_given
from meshxds.resources.health import HealthReport, apply_health
from meshxds.resources.hostnames import assign_hostnames
from meshxds.resources.k8s import Options, convert
from meshxds.resources.loader import Documents, Loaded, load_documents, resource_id
from meshxds.resources.match import DataplaneIndex
from meshxds.resources.policies import POLICY_KINDS, AnyPolicy
from meshxds.resources.references import reference_warnings
from meshxds.resources.status import assign_vips, update_multizone, update_status
from meshxds.resources.targeting import default_policies, reference_problems
from meshxds.resources.validate import validate
from meshxds.resources.zone_tags import stamp_zone

__all__ = [
    "Catalog",
    "LoadResult",
    "MeshView",
    "Problem",
    "Severity",
    "catalog_from_documents",
    "load_catalog",
    "with_connected",
]


@dataclass(frozen=True)
class LoadResult:
    """``catalog`` is None iff there are errors."""

    catalog: Catalog | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.errors + self.warnings


GRACE_ORIGIN = "(kept for its deletion grace period)"  # where a lingering generated MeshService "comes from"


def load_catalog(
    paths: Sequence[str | Path],
    zone: str = "default",
    previous: Catalog | None = None,
    connected: frozenset[str] = frozenset(),
    k8s: Options | None = None,
    health: Mapping[str, HealthReport] | None = None,
    dns_ports: Mapping[str, int] | None = None,
) -> LoadResult:
    """Read ``paths`` (files or folders) and build the Catalog a Kuma zone control plane would hold.

    ``previous`` keeps VIPs stable across reloads; ``connected`` holds the node ids of
    connected proxies (for ``status.dataplaneProxies.connected``). What sidecars reported is fed in
    here too, as Kuma's control plane stores it: ``health`` (HDS reports by node id; a probed inbound
    without one is NotReady) and ``dns_ports`` (node metadata ``dataplane.dns.port``).
    """
    return catalog_from_documents(load_documents(paths, zone), zone, previous, connected, k8s, health, dns_ports)


def catalog_from_documents(
    docs: Documents,
    zone: str = "default",
    previous: Catalog | None = None,
    connected: frozenset[str] = frozenset(),
    k8s: Options | None = None,
    health: Mapping[str, HealthReport] | None = None,
    dns_ports: Mapping[str, int] | None = None,
    grace: Grace | None = None,
) -> LoadResult:
    """``load_catalog`` on documents already read, so a caller can edit them in memory first (``migrate plan``)."""
    problems = list(docs.problems)
    items = list(docs.resources)
    meshes = {i.resource.name: i.resource for i in items if isinstance(i.resource, m.Mesh)}
    if not meshes:
        meshes = {"default": m.Mesh(name="default")}  # Kuma creates the default mesh
    dataplanes = [i.resource for i in items if isinstance(i.resource, m.Dataplane)]
    from_k8s, k8s_problems = convert(docs.k8s, meshes, dataplanes, replace(k8s or Options(), zone=zone))
    problems += k8s_problems
    problems += validate(items + from_k8s, set(meshes) | docs.broken_meshes)
    problems.sort(key=lambda p: (p.file, p.index or 0))
    errors = tuple(p for p in problems if p.is_error)
    if errors:
        return LoadResult(None, errors, tuple(p for p in problems if not p.is_error))
    reports = health or {}
    items = [
        replace(i, resource=apply_health(i.resource, reports.get(i.resource.node_id)))
        if isinstance(i.resource, m.Dataplane)
        else i
        for i in items
    ]
    catalog, build_warnings = build_catalog(items + from_k8s, meshes, zone, previous, connected, grace)
    if dns_ports:
        known = set(catalog.node_ids())
        catalog = replace(catalog, dns_ports={n: p for n, p in dns_ports.items() if n in known and p})
    warnings = sorted([p for p in problems if not p.is_error] + build_warnings, key=lambda p: (p.file, p.index or 0))
    return LoadResult(catalog, (), tuple(warnings))


def in_load_order(items: Sequence[Loaded]) -> list[Loaded]:
    """Stable sort by (file, document): generated services sit at their oldest Dataplane's place."""
    return sorted(items, key=lambda i: (i.origin.file, i.origin.index))


def build_catalog(
    items: Sequence[Loaded],
    meshes: dict[str, m.Mesh],
    zone: str,
    previous: Catalog | None,
    connected: frozenset[str],
    grace: Grace | None = None,
) -> tuple[Catalog, list[Problem]]:
    """``grace`` (store mode) keeps generated MeshServices past their last Dataplane, as Kuma's generator does."""
    warnings: list[Problem] = []
    items = [stamped(i, meshes, zone) for i in items]
    services: list[Loaded] = []
    for mesh in meshes.values():
        dp_items = [i for i in items if isinstance(i.resource, m.Dataplane) and i.resource.mesh == mesh.name]
        given = [i for i in items if isinstance(i.resource, m.MeshService) and i.resource.mesh == mesh.name]
        made, found = generate(mesh, dp_items, given, zone, previous_ports(previous, mesh.name))
        given, dropped = managed_given(mesh, given, made)
        warnings += found + dropped
        services += given + made
        if grace is not None and previous is not None and mesh.name in previous.meshes:
            taken = {i.resource.name for i in given + made}
            kept = lingering(mesh, previous.meshes[mesh.name].mesh_services, taken, grace)
            services += [Loaded(ms, Origin(GRACE_ORIGIN, 0)) for ms in kept]
    services += [i for i in items if isinstance(i.resource, m.MeshMultiZoneService)]
    ordered: list[m.MeshService | m.MeshMultiZoneService] = [
        i.resource for i in in_load_order(services) if isinstance(i.resource, m.MeshService | m.MeshMultiZoneService)
    ]
    before = previous_vips(previous)
    history = {ip for ips in before.values() for ip in ips} | (previous.allocated_vips if previous else frozenset())
    with_vips, allocated = assign_vips(ordered, before, history)
    memory = dict(before)
    memory.update({(s.kind, s.mesh, s.name): [v.ip for v in s.status.vips] for s in with_vips})
    generators = tuple(i.resource for i in items if isinstance(i.resource, m.HostnameGenerator))
    views: dict[str, MeshView] = {}
    for mesh in meshes.values():
        dps = tuple(i.resource for i in items if isinstance(i.resource, m.Dataplane) and i.resource.mesh == mesh.name)
        mss = [s for s in with_vips if isinstance(s, m.MeshService) and s.mesh == mesh.name]
        index = DataplaneIndex(dps)
        mss = [update_status(s, index, mesh, connected) for s in mss]
        mss = assign_hostnames(mss, generators, zone)
        mzss = [
            update_multizone(s, mss) for s in with_vips if isinstance(s, m.MeshMultiZoneService) and s.mesh == mesh.name
        ]
        mzss = assign_hostnames(mzss, generators, zone)
        mtps = tuple(
            i.resource
            for i in items
            if isinstance(i.resource, m.MeshTrafficPermission) and i.resource.mesh == mesh.name
        )
        policies, found = mesh_policies(mesh, items, mss, mzss, zone)
        warnings += found
        views[mesh.name] = MeshView(
            mesh=mesh,
            dataplanes=dps,
            mesh_services=tuple(mss),
            multizone_services=tuple(mzss),
            policies=policies,
            traffic_permissions=mtps,
        )
        warnings += reference_warnings(views[mesh.name], items)
    catalog = Catalog(
        zone=zone,
        meshes=views,
        hostname_generators=generators,
        zone_ingresses=tuple(i.resource for i in items if isinstance(i.resource, m.ZoneIngress)),
        allocated_vips=allocated,
        vip_memory={key: tuple(ips) for key, ips in memory.items()},
    )
    return catalog, warnings


def stamped(item: Loaded, meshes: dict[str, m.Mesh], zone: str) -> Loaded:
    """A Dataplane as the zone control plane stores it: with ``kuma.io/zone`` on its inbounds."""
    res = item.resource
    if not isinstance(res, m.Dataplane) or res.mesh not in meshes:
        return item
    dp = stamp_zone(res, zone, meshes[res.mesh].spec.mode)
    return item if dp is res else Loaded(dp, item.origin)


def mesh_policies(
    mesh: m.Mesh,
    items: Sequence[Loaded],
    mss: Sequence[m.MeshService],
    mzss: Sequence[m.MeshMultiZoneService],
    zone: str,
) -> tuple[tuple[AnyPolicy, ...], list[Problem]]:
    """Kuma's default policies (created with the Mesh, so the oldest) then the given ones in load order,
    with a warning for every reference that resolves to nothing."""
    given = [
        i
        for i in in_load_order(items)
        if i.resource.kind in POLICY_KINDS and getattr(i.resource, "mesh", "") == mesh.name
    ]
    warnings: list[Problem] = []
    for item in given:
        policy: AnyPolicy = item.resource  # type: ignore[assignment]
        for field, message in reference_problems(policy, mesh, mss, mzss):
            warnings.append(item.origin.warning(resource_id(policy), field, message))
    taken = {(i.resource.kind, i.resource.name) for i in given}
    defaults = [d for d in default_policies(mesh, zone) if (d.kind, d.name) not in taken]
    return tuple(defaults) + tuple(i.resource for i in given), warnings  # type: ignore[misc]


def previous_ports(previous: Catalog | None, mesh: str) -> dict[str, list[m.Port]]:
    """Ports of the MeshServices the generator made in the previous load (Kuma's "existing" spec)."""
    view = previous.meshes.get(mesh) if previous else None
    if view is None:
        return {}
    return {
        ms.name: ms.spec.ports
        for ms in view.mesh_services
        if ms.labels.get(m.MANAGED_BY_LABEL) == m.MANAGED_BY_GENERATOR
    }


def previous_vips(previous: Catalog | None) -> dict[tuple[str, str, str], list[str]]:
    if previous is None:
        return {}
    out = {key: list(ips) for key, ips in previous.vip_memory.items()}
    for view in previous.meshes.values():
        services: list[m.MeshService | m.MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        for svc in services:
            out[(svc.kind, svc.mesh, svc.name)] = [v.ip for v in svc.status.vips]
    return out


def with_connected(catalog: Catalog, connected: frozenset[str]) -> Catalog:
    """The same Catalog with ``dataplaneProxies.connected`` recounted, without reading files again.

    For the server, when proxies connect or disconnect; everything else in the status is unchanged.
    """
    views = {}
    for name, view in catalog.meshes.items():
        index = DataplaneIndex(view.dataplanes)
        mss = tuple(update_status(ms, index, view.mesh, connected) for ms in view.mesh_services)
        views[name] = replace(view, mesh_services=mss)
    return replace(catalog, meshes=views)
