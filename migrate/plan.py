"""``migrate plan``: load the mesh as it is and with ``meshServices.mode`` replaced, and say what changes.

Per proxy: the clusters, endpoints, listeners, routes and DNS names that appear and disappear, and the
resource count and encoded size before and after. Per destination: which proxies lose it, and whether
each still has a destination serving the same endpoints afterwards (a generated MeshService replacing
its ``kuma.io/service``, for instance). Per reference in the input: whether it breaks or changes meaning.
Services running in several zones are listed with the MeshMultiZoneService that would combine them.

Something *breaks* when a reference led somewhere and leads nowhere afterwards, or a proxy loses a
destination that had endpoints and nothing it keeps or gains serves any of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshxds.migrate import policy_refs  # noqa: F401  (registers the route and policy scanners)
from meshxds.migrate.inputs import InputError, load
from meshxds.migrate.references import Reference, replacements, scan
from meshxds.migrate.side import Side, Size
from meshxds.resources.model import MeshServicesMode
from meshxds.translators.endpoints import matched_mesh_services
from meshxds.translators.outbounds import Destination
from meshxds.xds.metrics_sink import Flow

KINDS = ("clusters", "endpoints", "listeners", "routes", "dns")
BREAKS = "breaks"
CHANGES = "changes meaning"
RESOLVES = "starts resolving"
UNCHANGED = "unchanged"
# Live traffic per proxy and cluster, from a running server's metrics sink (``migrate/traffic.py``).
Traffic = Mapping[str, Mapping[str, Flow]]


@dataclass(frozen=True)
class ProxyChange:
    node: str
    appear: dict[str, list[str]]
    disappear: dict[str, list[str]]
    before: Size
    after: Size


@dataclass(frozen=True)
class Loss:
    """One proxy losing one destination, and what (if anything) it keeps that serves the same endpoints."""

    node: str
    replaced_by: tuple[str, ...]
    had_endpoints: bool
    unreached: int = 0  # of its endpoints, how many nothing the proxy keeps or gains reaches
    endpoints: int = 0
    traffic: Flow | None = None  # live traffic through it (None: not known)

    @property
    def breaks(self) -> bool:
        return self.had_endpoints and not self.replaced_by


@dataclass(frozen=True)
class DestinationChange:
    destination: str  # label: "kuma.io/service backend", "MeshService backend:80"
    cluster: str
    kind: str
    lost_by: tuple[Loss, ...]
    gained_by: tuple[str, ...]


@dataclass(frozen=True)
class ReferenceChange:
    reference: Reference
    status: str  # breaks | starts resolving | changes meaning | unchanged
    before: tuple[str, ...]
    after: tuple[str, ...]
    legacy: bool = False  # a kuma.io/service usage after the switch
    services: tuple[str, ...] = ()  # the kuma.io/service names it uses after the switch
    suggest: tuple[str, ...] = ()  # what to name instead (MeshService/MeshMultiZoneService ports serving them)


@dataclass(frozen=True)
class MultiZone:
    """A service with MeshServices in several zones: under MeshService a client reaches only one of them."""

    service: str
    zones: tuple[str, ...]
    covered_by: tuple[str, ...]  # MeshMultiZoneServices matching all of them


@dataclass(frozen=True)
class Plan:
    mesh: str
    from_mode: str
    to_mode: str
    proxies: tuple[ProxyChange, ...]
    destinations: tuple[DestinationChange, ...]
    references: tuple[ReferenceChange, ...]
    multizone: tuple[MultiZone, ...]
    traffic_known: bool = False

    @property
    def broken_references(self) -> list[ReferenceChange]:
        return [r for r in self.references if r.status == BREAKS]

    @property
    def broken_losses(self) -> list[tuple[DestinationChange, Loss]]:
        return [(d, loss) for d in self.destinations for loss in d.lost_by if loss.breaks]

    @property
    def busy_losses(self) -> list[tuple[DestinationChange, Loss]]:
        """Destinations that disappear while traffic still flows through them."""
        return [(d, loss) for d in self.destinations for loss in d.lost_by if loss.traffic and loss.traffic.in_use]

    @property
    def breaks(self) -> bool:
        return bool(self.broken_references or self.broken_losses)


def make_plan(
    paths: Sequence[str | Path],
    mesh: str,
    to: MeshServicesMode,
    zone: str = "default",
    traffic: Traffic | None = None,
    from_mode: MeshServicesMode | None = None,
) -> Plan:
    """The plan for switching ``mesh`` to ``to`` (from ``from_mode`` instead of the files' mode when given);
    raises ``InputError`` on bad input or an unknown mesh."""
    before_input = load(paths, zone)
    if mesh in before_input.catalog.meshes and from_mode is not None:
        before_input = load(paths, zone, (mesh, from_mode))
    if mesh not in before_input.catalog.meshes:
        known = ", ".join(sorted(before_input.catalog.meshes)) or "(none)"
        raise InputError([f"--mesh {mesh!r}: no such mesh; known meshes: {known}"])
    after_input = load(paths, zone, (mesh, to), previous=before_input.catalog)
    return compare(Side(before_input, mesh), Side(after_input, mesh), traffic)


def compare(before: Side, after: Side, traffic: Traffic | None = None) -> Plan:
    nodes = sorted(set(before.dataplanes) | set(after.dataplanes))
    proxies = tuple(proxy_change(before, after, n) for n in nodes)
    refs = tuple(reference_change(r, before, after) for r in scan(after.input.documents.resources, after.mesh))
    return Plan(
        mesh=after.mesh,
        from_mode=before.mode.value,
        to_mode=after.mode.value,
        proxies=proxies,
        destinations=destination_changes(before, after, nodes, traffic),
        references=refs,
        multizone=multizone(after if after.mode != MeshServicesMode.DISABLED else before),
        traffic_known=traffic is not None,
    )


def proxy_change(before: Side, after: Side, node: str) -> ProxyChange:
    old, new = before.names(node), after.names(node)
    return ProxyChange(
        node,
        appear={k: sorted(new[k] - old[k]) for k in KINDS},
        disappear={k: sorted(old[k] - new[k]) for k in KINDS},
        before=before.size(node),
        after=after.size(node),
    )


def destination_changes(
    before: Side, after: Side, nodes: list[str], traffic: Traffic | None
) -> tuple[DestinationChange, ...]:
    """Per destination (by cluster), who loses and gains it; a loss is replaced by what serves its endpoints."""
    lost: dict[str, list[Loss]] = defaultdict(list)
    gained: dict[str, list[str]] = defaultdict(list)
    dests: dict[str, tuple[Side, Destination]] = {}
    for node in nodes:
        old = {ob.destination.cluster: ob.destination for ob in before.outbounds(node)}
        new = {ob.destination.cluster: ob.destination for ob in after.outbounds(node)}
        for cluster in sorted(old.keys() - new.keys()):
            dest = old[cluster]
            dests.setdefault(cluster, (before, dest))
            served = before.served(dest)
            serving = after.serving(node, served)
            replaced = tuple(sorted(after.label(d) for d in serving))
            reached = frozenset().union(*(after.served(d) for d in serving))
            flow = traffic.get(node, {}).get(cluster) if traffic is not None else None
            loss = Loss(node, replaced, bool(served), len(served - reached), len(served), flow)
            lost[cluster].append(loss)
        for cluster in sorted(new.keys() - old.keys()):
            dests.setdefault(cluster, (after, new[cluster]))
            gained[cluster].append(node)
    out = []
    for cluster in sorted(dests, key=lambda c: (dests[c][1].kind != "Legacy", dests[c][0].label(dests[c][1]))):
        side, dest = dests[cluster]
        out.append(DestinationChange(side.label(dest), cluster, dest.kind,
                                     tuple(lost.get(cluster, ())), tuple(gained.get(cluster, ()))))  # fmt: skip
    return tuple(out)


def reference_change(ref: Reference, before: Side, after: Side) -> ReferenceChange:
    """Judge one reference; a ``kuma.io/service`` usage gets replacements from the load that has MeshServices
    (after the switch, or before it when switching back to Disabled)."""
    old, new = ref.resolve(before), ref.resolve(after)
    status = BREAKS if old and not new else RESOLVES if new and not old else CHANGES if old != new else UNCHANGED
    names = ref.services(after) if ref.services is not None else ()
    source = before if after.mode == MeshServicesMode.DISABLED else after
    suggest = [ref.instead] if ref.instead else []
    suggest += dict.fromkeys(s for name in names for s in replacements(source, name))
    return ReferenceChange(ref, status, tuple(sorted(old)), tuple(sorted(new)), ref.legacy or bool(names),
                           names, tuple(suggest))  # fmt: skip


def multizone(side: Side) -> tuple[MultiZone, ...]:
    """MeshServices sharing a display name across zones, and the MeshMultiZoneServices that combine them all."""
    zones: dict[str, set[str]] = defaultdict(set)
    members: dict[str, set[str]] = defaultdict(set)
    for ms in side.view.mesh_services:
        zones[ms.display_name].add(ms.zone or side.input.catalog.zone)
        members[ms.display_name].add(ms.name)
    out = []
    for name in sorted(zones):
        if len(zones[name]) < 2:
            continue
        covered = tuple(
            sorted(
                mz.name
                for mz in side.view.multizone_services
                if members[name] <= {ms.name for ms in matched_mesh_services(side.view, mz)}
            )
        )
        out.append(MultiZone(name, tuple(sorted(zones[name])), covered))
    return tuple(out)
