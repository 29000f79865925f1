"""Universal MeshService generation, as Kuma's zone control plane does it (generator.go).

One MeshService per valid ``kuma.io/service`` value of Dataplane inbounds, in every
mode but Disabled. Files carry no creation time, so the "oldest" Dataplane is the
one loaded first; its ports win a conflict and the Dataplanes that disagree are
named in a warning. Hand-written MeshServices are never overwritten; stored ones that carry the
generator's ``kuma.io/managed-by`` label are the generator's own and are regenerated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple

from meshxds.resources import model as m
from meshxds.resources.errors import Origin, Problem
from meshxds.resources.loader import AnyResource, Loaded, describe
from meshxds.resources.memo import CatalogMemo, Table
from meshxds.resources.names import is_dns1035


class Candidate(NamedTuple):
    """The ports one Dataplane asks for under one service name."""

    dataplane: m.Dataplane
    origin: Origin
    ports: tuple[m.Port, ...]


def inbound_port(inbound: m.Inbound) -> m.Port:
    """Kuma: name = inbound.name or the number; targetPort = inbound.port (not servicePort)."""
    protocol = (inbound.protocol or inbound.tags.get(m.PROTOCOL_TAG) or "").lower()
    return m.Port(
        name=inbound.name or str(inbound.port),
        port=inbound.port,
        target_port=inbound.port,
        app_protocol=protocol if protocol in m.APP_PROTOCOLS else "tcp",
    )


# One Dataplane's wanted ports by service name (in inbound order), and the inbounds whose service name
# is not a DNS-1035 label (index, name): all the generator reads of a Dataplane.
DataplanePorts = tuple[tuple[tuple[str, tuple[m.Port, ...]], ...], tuple[tuple[int, str], ...]]


def dataplane_ports(dp: m.Dataplane, interned: Table | None = None) -> DataplanePorts:
    """``interned`` makes equal port lists the very same tuple (the Dataplanes of one service compare them)."""
    ports: dict[str, list[m.Port]] = {}
    invalid: list[tuple[int, str]] = []
    for i, inbound in enumerate(dp.networking.inbound):
        service = inbound.service
        if service is None:
            continue
        if not is_dns1035(service):
            invalid.append((i, service))
            continue
        ports.setdefault(service, []).append(inbound_port(inbound))
    return tuple((service, intern_ports(tuple(wanted), interned)) for service, wanted in ports.items()), tuple(invalid)


def intern_ports(ports: tuple[m.Port, ...], interned: Table | None) -> tuple[m.Port, ...]:
    if interned is None:
        return ports
    key = tuple((p.name, p.port, p.target_port, p.app_protocol) for p in ports)
    return interned.keep(key, ports)


def candidates(
    dataplanes: Sequence[Loaded], memo: CatalogMemo | None = None
) -> tuple[dict[str, list[Candidate]], list[Problem]]:
    """Per service name, each Dataplane's wanted ports, in load order (oldest first).

    ``memo`` keeps each Dataplane's ports: an unchanged Dataplane gives the very same ``Port`` objects.
    """
    by_service: dict[str, list[Candidate]] = {}
    warnings: list[Problem] = []
    table, interned = (memo["candidates"], memo["ports"]) if memo is not None else (None, None)
    for item in dataplanes:
        dp = item.resource
        assert isinstance(dp, m.Dataplane)
        if table is None:
            wanted, invalid = dataplane_ports(dp)
        else:
            wanted, invalid = table.of(dp, None, dataplane_ports, dp, interned)
        for i, service in invalid:
            warnings.append(
                item.origin.warning(
                    describe("Dataplane", dp.name, dp.mesh),
                    f"spec.networking.inbound[{i}].tags.{m.SERVICE_TAG}",
                    f"no MeshService generated: {service!r} is not a DNS-1035 label",
                )
            )
        for service, ports in wanted:
            by_service.setdefault(service, []).append(Candidate(dp, item.origin, ports))
    return by_service, warnings


def generated_labels(mesh: str, name: str, zone: str) -> dict[str, str]:
    return {
        m.MESH_LABEL: mesh,
        m.DISPLAY_NAME_LABEL: name,
        m.MANAGED_BY_LABEL: m.MANAGED_BY_GENERATOR,
        m.ENV_LABEL: "universal",
        m.ZONE_LABEL: zone,
        m.ORIGIN_LABEL: "zone",
    }


def show_ports(ports: Sequence[m.Port]) -> str:
    return "[" + ", ".join(f"{p.section_name}:{p.port}/{p.app_protocol}" for p in ports) + "]"


def generate(
    mesh: m.Mesh,
    dataplanes: Sequence[Loaded],
    given: Sequence[Loaded],
    zone: str,
    existing: Mapping[str, Sequence[m.Port]] | None = None,
    memo: CatalogMemo | None = None,
) -> tuple[list[Loaded], list[Problem]]:
    """Generated MeshServices (each placed at its oldest Dataplane's origin) and warnings.

    ``existing`` holds the ports of the MeshServices generated by the previous load: as in
    Kuma, an existing spec is kept while at least one Dataplane still agrees with it. With ``memo``,
    a service whose inputs are unchanged is the very same object as in the previous build.
    """
    existing = existing or {}
    if mesh.spec.mode == m.MeshServicesMode.DISABLED:
        return [], []
    taken = {g.resource.name: g for g in given}
    by_service, warnings = candidates(dataplanes, memo)
    out: list[Loaded] = []
    for service, cands in by_service.items():
        oldest = cands[0]
        before = tuple(existing.get(service, ()))
        if service in taken:
            hand = taken[service]
            if not is_generated(hand.resource):
                dps = ", ".join(c.dataplane.name for c in cands)
                message = f"kept as written: not generated from the inbounds of Dataplane(s) {dps}"
                warnings.append(hand.origin.warning(describe("MeshService", service, mesh.name), None, message))
                continue
            # Stored with the generator's label: it is the generator's own, its ports are the "existing" spec.
            assert isinstance(hand.resource, m.MeshService)
            before = tuple(hand.resource.spec.ports)
            oldest = Candidate(oldest.dataplane, hand.origin, oldest.ports)
        winner = next((c for c in cands if before and c.ports == before), cands[0])
        disagree = [c for c in cands if c.ports != winner.ports]
        if disagree:
            names = ", ".join(f"{c.dataplane.name} {show_ports(c.ports)}" for c in disagree)
            basis = (
                f"the ports it already had {show_ports(before)}, kept while {winner.dataplane.name} has them"
                if before and winner.ports == before
                else f"the oldest, {cands[0].dataplane.name} {show_ports(cands[0].ports)}, whose ports are kept"
            )
            message = (
                "port conflict, ports must be identical across Dataplane inbounds grouped into a single "
                f"MeshService: {names} differ from {basis}"
            )
            warnings.append(disagree[0].origin.warning(describe("MeshService", service, mesh.name), None, message))
        stored = taken[service].resource if service in taken else None
        make = partial(generated_service, mesh.name, service, zone, winner.ports, stored)
        ms = memo["generated"].get((mesh.name, service), (zone, winner.ports, stored), make) if memo else make()
        out.append(Loaded(ms, oldest.origin))
    return out, warnings


def generated_service(
    mesh: str, service: str, zone: str, ports: tuple[m.Port, ...], stored: AnyResource | None
) -> m.MeshService:
    """The generator's MeshService; ``stored`` is one it made before (Kuma updates it: its other labels and its
    status stay)."""
    labels = generated_labels(mesh, service, zone)
    status = m.MeshServiceStatus()
    if stored is not None:
        assert isinstance(stored, m.MeshService)
        labels, status = {**stored.labels, **labels}, stored.status
    return m.MeshService(
        name=service,
        mesh=mesh,
        labels=labels,
        spec=m.MeshServiceSpec(selector=m.Selector(dataplane_tags={m.SERVICE_TAG: service}), ports=list(ports)),
        status=status,
    )


def is_generated(ms: object) -> bool:
    """A local MeshService labelled ``kuma.io/managed-by: meshservice-generator`` belongs to the generator."""
    return isinstance(ms, m.MeshService) and ms.is_local and ms.labels.get(m.MANAGED_BY_LABEL) == m.MANAGED_BY_GENERATOR


def managed_given(
    mesh: m.Mesh, given: Sequence[Loaded], generated: Sequence[Loaded]
) -> tuple[list[Loaded], list[Problem]]:
    """What becomes of MeshServices stored with the generator's label (generator.go ``generate`` and ``Start``).

    Replaced by their regenerated version when Dataplanes still give them; kept (Kuma starts a
    deletion grace period) when none does; dropped in a Disabled mesh (Kuma deletes them at once).
    """
    made = {g.resource.name for g in generated}
    kept: list[Loaded] = []
    warnings: list[Problem] = []
    for item in given:
        res = item.resource
        what = describe("MeshService", res.name, mesh.name)
        if not is_generated(res):
            kept.append(item)
        elif mesh.spec.mode == m.MeshServicesMode.DISABLED:
            message = "dropped: generator-managed, and MeshServices are Disabled in this mesh (Kuma deletes it)"
            warnings.append(item.origin.warning(what, f"labels.{m.MANAGED_BY_LABEL}", message))
        elif res.name not in made:
            message = "generator-managed but no Dataplane inbound gives it: Kuma deletes it after its grace period"
            warnings.append(item.origin.warning(what, f"labels.{m.MANAGED_BY_LABEL}", message))
            kept.append(item)
    return kept, warnings


GRACE_LABEL = "kuma.io/deletion-grace-period-started-at"  # mesh_proto.DeletionGracePeriodStartedLabel


@dataclass(frozen=True)
class Grace:
    """Kuma's ``meshService.deletionGracePeriod`` (1 h by default): how long a generated MeshService outlives
    its last Dataplane. ``now`` is the generator's clock at this build (the store mode passes the real time)."""

    now: datetime
    period: timedelta = timedelta(hours=1)


def grace_started(ms: m.MeshService) -> datetime | None:
    """The grace label's time, or None when absent or unreadable (Kuma then starts the period anew)."""
    text = ms.labels.get(GRACE_LABEL)
    if not text:
        return None
    try:
        started = datetime.fromisoformat(text)
    except ValueError:
        return None
    return started if started.tzinfo is not None else started.replace(tzinfo=UTC)


def lingering(mesh: m.Mesh, previous: Sequence[m.MeshService], taken: set[str], grace: Grace) -> list[m.MeshService]:
    """Generated MeshServices of the previous build that no Dataplane gives any more (generator.go ``generate``):
    kept with the grace label (set to ``now`` when missing or unreadable) until the period has passed, then gone.
    ``taken`` holds the names this build already has (generated again or written by hand). One that already
    carries its label is kept as the very same object, so the next build sees it unchanged."""
    if mesh.spec.mode == m.MeshServicesMode.DISABLED:
        return []
    out: list[m.MeshService] = []
    for ms in previous:
        if not is_generated(ms) or ms.name in taken:
            continue
        started = grace_started(ms)
        if started is not None and grace.now - started > grace.period:
            continue  # the period is over: Kuma deletes it
        stamp = (started or grace.now).astimezone(UTC).isoformat().replace("+00:00", "Z")
        if ms.labels.get(GRACE_LABEL) == stamp:
            out.append(ms)
        else:
            out.append(ms.model_copy(update={"labels": {**ms.labels, GRACE_LABEL: stamp}}))
    return out
