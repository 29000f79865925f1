"""Universal MeshService generation, as Kuma's zone control plane does it (generator.go).

One MeshService per valid ``kuma.io/service`` value of Dataplane inbounds, in every
mode but Disabled. Files carry no creation time, so the "oldest" Dataplane is the
one loaded first; its ports win a conflict and the Dataplanes that disagree are
named in a warning. Hand-written MeshServices are never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from resources import model as m
from resources.errors import Origin, Problem
from resources.loader import Loaded, describe
from resources.names import is_dns1035


@dataclass(frozen=True)
class Candidate:
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


def candidates(dataplanes: Sequence[Loaded]) -> tuple[dict[str, list[Candidate]], list[Problem]]:
    """Per service name, each Dataplane's wanted ports, in load order (oldest first)."""
    by_service: dict[str, list[Candidate]] = {}
    warnings: list[Problem] = []
    for item in dataplanes:
        dp = item.resource
        assert isinstance(dp, m.Dataplane)
        ports: dict[str, list[m.Port]] = {}
        for i, inbound in enumerate(dp.networking.inbound):
            service = inbound.service
            if service is None:
                continue
            if not is_dns1035(service):
                warnings.append(
                    item.origin.warning(
                        describe("Dataplane", dp.name, dp.mesh),
                        f"spec.networking.inbound[{i}].tags.{m.SERVICE_TAG}",
                        f"no MeshService generated: {service!r} is not a DNS-1035 label",
                    )
                )
                continue
            ports.setdefault(service, []).append(inbound_port(inbound))
        for service, wanted in ports.items():
            by_service.setdefault(service, []).append(Candidate(dp, item.origin, tuple(wanted)))
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
    mesh: m.Mesh, dataplanes: Sequence[Loaded], given: Sequence[Loaded], zone: str
) -> tuple[list[Loaded], list[Problem]]:
    """Generated MeshServices (each with its oldest Dataplane's origin) and warnings."""
    if mesh.spec.mode == m.MeshServicesMode.DISABLED:
        return [], []
    taken = {g.resource.name: g for g in given}
    by_service, warnings = candidates(dataplanes)
    out: list[Loaded] = []
    for service, cands in by_service.items():
        oldest = cands[0]
        what = describe("MeshService", service, mesh.name)
        if service in taken:
            hand = taken[service]
            if hand.resource.labels.get(m.MANAGED_BY_LABEL) != m.MANAGED_BY_GENERATOR:
                dps = ", ".join(c.dataplane.name for c in cands)
                message = f"kept as written: not generated from the inbounds of Dataplane(s) {dps}"
                warnings.append(hand.origin.warning(what, None, message))
            continue
        disagree = [c for c in cands[1:] if c.ports != oldest.ports]
        if disagree:
            names = ", ".join(f"{c.dataplane.name} {show_ports(c.ports)}" for c in disagree)
            warnings.append(
                disagree[0].origin.warning(
                    what,
                    None,
                    "port conflict, ports must be identical across Dataplane inbounds grouped into a single "
                    f"MeshService: {names} differ from the oldest, {oldest.dataplane.name} "
                    f"{show_ports(oldest.ports)}, whose ports are kept",
                )
            )
        ms = m.MeshService(
            name=service,
            mesh=mesh.name,
            labels=generated_labels(mesh.name, service, zone),
            spec=m.MeshServiceSpec(
                selector=m.Selector(dataplane_tags={m.SERVICE_TAG: service}),
                ports=list(oldest.ports),
            ),
        )
        out.append(Loaded(ms, oldest.origin))
    return out, warnings
