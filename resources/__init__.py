"""Kuma resources → an immutable Catalog: load, validate, generate MeshServices, fill status.

``load_catalog`` is the one entry point: it never raises on bad input; every problem
comes back in ``LoadResult.errors`` / ``warnings`` naming file, document, resource and field.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from meshxds.resources import model as m
from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.errors import Origin, Problem, Severity
from meshxds.resources.generate import Grace, generate, lingering, managed_given
from meshxds.resources.health import HealthReport, apply_health
from meshxds.resources.hostnames import assign_hostnames
from meshxds.resources.k8s import Options, convert
from meshxds.resources.loader import Documents, Loaded, load_documents, resource_id
from meshxds.resources.match import DataplaneIndex, select_each
from meshxds.resources.memo import CatalogMemo
from meshxds.resources.policies import POLICY_KINDS, AnyPolicy
from meshxds.resources.references import reference_warnings
from meshxds.resources.rules import check_resource
from meshxds.resources.status import assign_vips, status_of, update_multizone, update_status
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
    """``load_catalog`` on documents already read, so a caller can edit them in memory first (``migrate plan``).

    With a ``previous`` Catalog, every step whose inputs are unchanged takes its result from that build
    (``resources.memo``): a reload costs in proportion to what changed, the Catalog is equal to a build
    from scratch, and what did not change stays the very same objects.
    """
    memo = CatalogMemo(previous.memo if previous is not None else None)
    problems = list(docs.problems)
    items = canonical(docs.resources, memo)
    meshes = {i.resource.name: i.resource for i in items if isinstance(i.resource, m.Mesh)}
    if not meshes:
        meshes = {"default": DEFAULT_MESH}  # Kuma creates the default mesh
    from_k8s: list[Loaded] = []
    if docs.k8s:
        dataplanes = tuple(i.resource for i in items if isinstance(i.resource, m.Dataplane))
        options = replace(k8s or Options(), zone=zone)
        inputs = (docs.k8s, tuple(meshes.items()), dataplanes, options)
        from_k8s, k8s_problems = memo["k8s"].get("k8s", inputs, partial(convert, docs.k8s, meshes, dataplanes, options))
        problems += k8s_problems
    checks = memo["checks"]
    problems += validate(
        items + from_k8s, set(meshes) | docs.broken_meshes, lambda res: checks.of(res, None, check_resource, res)
    )
    problems.sort(key=lambda p: (p.file, p.index or 0))
    errors = tuple(p for p in problems if p.is_error)
    if errors:
        return LoadResult(None, errors, tuple(p for p in problems if not p.is_error))
    catalog, build_warnings = build_catalog(items + from_k8s, meshes, zone, previous, connected, grace, memo, health)
    memo.release()
    if dns_ports:
        known = set(catalog.node_ids())
        catalog = replace(catalog, dns_ports={n: p for n, p in dns_ports.items() if n in known and p})
    warnings = sorted([p for p in problems if not p.is_error] + build_warnings, key=lambda p: (p.file, p.index or 0))
    return LoadResult(catalog, (), tuple(warnings))


DEFAULT_MESH = m.Mesh(name="default")


def canonical(items: Sequence[Loaded], memo: CatalogMemo) -> list[Loaded]:
    """``items`` with every resource equal to one of the previous build (same kind, mesh and name) replaced by
    that very object: a file read again gives new objects, and identity is what the steps below compare first."""
    table = memo["canonical"]
    out = []
    for item in items:
        res = item.resource
        kept = table.keep((res.kind, getattr(res, "mesh", ""), res.name), res)
        out.append(item if kept is res else Loaded(kept, item.origin))
    return out


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
    memo: CatalogMemo | None = None,
    health: Mapping[str, HealthReport] | None = None,
) -> tuple[Catalog, list[Problem]]:
    """``grace`` (store mode) keeps generated MeshServices past their last Dataplane, as Kuma's generator does.
    ``memo`` is this build's (taking over the previous build's results); without one, everything is made anew.
    ``health``: the sidecars' latest reports by node id."""
    memo = memo if memo is not None else CatalogMemo()
    warnings: list[Problem] = []
    kinds: dict[str, list[Loaded]] = defaultdict(list)  # by kind, in load order
    stored = memo["stored"]
    reports = health or {}
    modes = {name: mesh.spec.mode for name, mesh in meshes.items()}
    for item in items:
        dp = item.resource
        if isinstance(dp, m.Dataplane):
            report = reports.get(dp.node_id) if reports else None
            mode = modes.get(dp.mesh)
            inputs = (report.key() if report is not None else None, zone, mode)
            res = stored.of(dp, inputs, as_stored, dp, report, zone, mode)
            item = item if res is dp else Loaded(res, item.origin)
        kinds[dp.kind].append(item)
    dp_items = by_mesh(kinds["Dataplane"])
    services: list[Loaded] = []
    for mesh in meshes.values():
        given = [i for i in kinds["MeshService"] if i.resource.mesh == mesh.name]  # type: ignore[union-attr]
        made, found = generate(mesh, dp_items[mesh.name], given, zone, previous_ports(previous, mesh.name), memo)
        given, dropped = managed_given(mesh, given, made)
        warnings += found + dropped
        services += given + made
        if grace is not None and previous is not None and mesh.name in previous.meshes:
            taken = {i.resource.name for i in given + made}
            kept = lingering(mesh, previous.meshes[mesh.name].mesh_services, taken, grace)
            services += [Loaded(ms, Origin(GRACE_ORIGIN, 0)) for ms in kept]
    services += kinds["MeshMultiZoneService"]
    ordered: list[m.MeshService | m.MeshMultiZoneService] = [
        i.resource for i in in_load_order(services) if isinstance(i.resource, m.MeshService | m.MeshMultiZoneService)
    ]
    before = previous_vips(previous)
    history = set(previous.allocated_vips if previous else ()).union(*before.values())
    with_vips, allocated = assign_vips(ordered, before, history, memo["vips"])
    memory = dict(before)
    memory.update({(s.kind, s.mesh, s.name): tuple(v.ip for v in s.status.vips) for s in with_vips})
    generators = tuple(i.resource for i in kinds["HostnameGenerator"] if isinstance(i.resource, m.HostnameGenerator))
    policies_by_mesh = by_mesh(i for kind in POLICY_KINDS for i in kinds[kind])
    views: dict[str, MeshView] = {}
    for mesh in meshes.values():
        dps = tuple(i.resource for i in dp_items[mesh.name] if isinstance(i.resource, m.Dataplane))
        mss = [s for s in with_vips if isinstance(s, m.MeshService) and s.mesh == mesh.name]
        mss = statuses(mss, dps, mesh, connected, memo)
        mss = assign_hostnames(mss, generators, zone, memo["hostnames"], memo["renders"])
        local = memo.intern(("MeshService", mesh.name), tuple(mss))
        mzss = [
            memo["multizone"].get(id(s), (s, local), partial(update_multizone, s, local))
            for s in with_vips
            if isinstance(s, m.MeshMultiZoneService) and s.mesh == mesh.name
        ]
        mzss = assign_hostnames(mzss, generators, zone, memo["hostnames"], memo["renders"])
        multizone = memo.intern(("MeshMultiZoneService", mesh.name), tuple(mzss))
        mtps = tuple(
            i.resource
            for i in kinds["MeshTrafficPermission"]
            if isinstance(i.resource, m.MeshTrafficPermission) and i.resource.mesh == mesh.name
        )
        policies, found = mesh_policies(mesh, policies_by_mesh[mesh.name], local, multizone, zone, memo)
        warnings += found
        views[mesh.name] = MeshView(
            mesh=mesh,
            dataplanes=dps,
            mesh_services=local,
            multizone_services=multizone,
            policies=policies,
            traffic_permissions=mtps,
        )
        warnings += reference_warnings(views[mesh.name], dp_items[mesh.name], memo["references"])
    catalog = Catalog(
        zone=zone,
        meshes=views,
        hostname_generators=generators,
        zone_ingresses=tuple(i.resource for i in kinds["ZoneIngress"] if isinstance(i.resource, m.ZoneIngress)),
        allocated_vips=allocated,
        vip_memory=memory,
        memo=memo,
    )
    return catalog, warnings


def as_stored(dp: m.Dataplane, report: HealthReport | None, zone: str, mode: m.MeshServicesMode | None) -> m.Dataplane:
    """A Dataplane as the zone control plane stores it: its probed inbounds' health from the sidecar's latest
    report (or none yet), and ``kuma.io/zone`` on its inbounds (the same object when nothing changes)."""
    dp = apply_health(dp, report)
    return dp if mode is None else stamp_zone(dp, zone, mode)


def by_mesh(items: Iterable[Loaded]) -> defaultdict[str, list[Loaded]]:
    """Mesh-scoped resources by mesh name, in the order given."""
    out: defaultdict[str, list[Loaded]] = defaultdict(list)
    for item in items:
        out[getattr(item.resource, "mesh", "")].append(item)
    return out


def statuses(
    mss: Sequence[m.MeshService],
    dps: tuple[m.Dataplane, ...],
    mesh: m.Mesh,
    connected: frozenset[str],
    memo: CatalogMemo,
) -> list[m.MeshService]:
    """``update_status`` of every local MeshService of ``mesh``. What each selects is updated from the previous
    build's selection (``select_each``); a service whose inputs (itself, the very same selected Dataplanes, the
    mesh's mTLS, their connected state) are unchanged keeps its previous result."""
    local = [ms for ms in mss if ms.is_local]
    selectors = {ms.name: ms.spec.selector for ms in local}
    if len(selectors) != len(local):  # two of one name (only in an invalid input)
        index = DataplaneIndex(dps)
        return [update_status(ms, index, mesh, connected) for ms in mss]
    table = memo["selection"]
    selections = select_each(selectors, dps, table.last(mesh.name))
    table.put(mesh.name, selections)
    mtls = mesh.spec.mtls_enabled
    linked = {id(dp) for dp in dps if dp.node_id in connected} if connected else set()
    done = memo["status"]
    out = []
    for ms in mss:
        if ms.name not in selectors or selectors[ms.name] is not ms.spec.selector:
            out.append(ms)  # not local: Kuma's updater leaves it alone
            continue
        picked = selections.picked[ms.name][1]
        inputs = (ms, picked, mtls, len(linked.intersection(map(id, picked))))  # how many of them are connected
        make = partial(status_of, ms, picked, mtls, connected)
        out.append(done.get(id(ms), inputs, make, keep_equal=True))
    return out


def mesh_policies(
    mesh: m.Mesh,
    items: Sequence[Loaded],
    mss: Sequence[m.MeshService],
    mzss: Sequence[m.MeshMultiZoneService],
    zone: str,
    memo: CatalogMemo | None = None,
) -> tuple[tuple[AnyPolicy, ...], list[Problem]]:
    """Kuma's default policies (created with the Mesh, so the oldest) then the given ones in load order,
    with a warning for every reference that resolves to nothing."""
    memo = memo if memo is not None else CatalogMemo()
    given = in_load_order(
        [i for i in items if i.resource.kind in POLICY_KINDS and getattr(i.resource, "mesh", "") == mesh.name]
    )
    warnings: list[Problem] = []
    services, multizone = tuple(mss), tuple(mzss)
    for item in given:
        policy: AnyPolicy = item.resource  # type: ignore[assignment]
        make = partial(reference_problems, policy, mesh, services, multizone)
        found = memo["policy_refs"].get(id(policy), (policy, mesh, services, multizone), make)
        for field, message in found:
            warnings.append(item.origin.warning(resource_id(policy), field, message))
    taken = {(i.resource.kind, i.resource.name) for i in given}
    made = memo["defaults"].get(mesh.name, (mesh, zone), lambda: tuple(default_policies(mesh, zone)))
    defaults = [d for d in made if (d.kind, d.name) not in taken]
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


def previous_vips(previous: Catalog | None) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """The VIPs of every service the chain of loads up to ``previous`` has seen, by (kind, mesh, name)."""
    if previous is None:
        return {}
    out = dict(previous.vip_memory)
    for view in previous.meshes.values():
        services: list[m.MeshService | m.MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        for svc in services:
            out[(svc.kind, svc.mesh, svc.name)] = tuple(v.ip for v in svc.status.vips)
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
