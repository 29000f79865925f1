"""MeshService / MeshMultiZoneService status, as Kuma's zone control plane fills it.

VIPs: the next free address of 241.0.0.0/8 (243.0.0.0/8 for MeshMultiZoneService) in
load order, starting at 241.0.0.0 itself as Kuma does. With a previous Catalog, a service
that existed keeps its VIP and addresses handed out before are never reused, so a reload
never moves a VIP. The status updater part (identities, state, tls, dataplaneProxies) follows Kuma's status/updater.go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence

from meshxds.resources import model as m
from meshxds.resources.match import DataplaneIndex, labels_match, serves
from meshxds.resources.memo import Table

MESH_SERVICE_CIDR = ipaddress.IPv4Network("241.0.0.0/8")
MULTIZONE_CIDR = ipaddress.IPv4Network("243.0.0.0/8")

Service = m.MeshService | m.MeshMultiZoneService


class VipAllocator:
    """Lowest free address of a CIDR, skipping everything reserved (never reuses a handed-out IP).

    As Kuma's allocator (Nordix simple-ipam, ``core/vip/allocator_test.go``), the first VIP is the
    range's own first address: 241.0.0.0, then 241.0.0.1, ...
    """

    def __init__(self, cidr: ipaddress.IPv4Network, reserved: Iterable[str]) -> None:
        self.cidr = cidr
        self.reserved = {ip for ip in reserved}
        self.next = int(cidr.network_address)

    def allocate(self) -> str:
        last = int(self.cidr.broadcast_address)
        while self.next <= last:
            ip = str(ipaddress.IPv4Address(self.next))
            self.next += 1
            if ip not in self.reserved:
                self.reserved.add(ip)
                return ip
        raise RuntimeError(f"VIP range {self.cidr} exhausted")


def assign_vips(
    services: Sequence[Service],
    previous: Mapping[tuple[str, str, str], Sequence[str]],
    history: Iterable[str],
    memo: Table | None = None,
) -> tuple[list[Service], frozenset[str]]:
    """Fill empty ``status.vips``; returns the services and every VIP ever handed out.

    ``previous`` maps (kind, mesh, name) to the VIPs it had in the previous catalog;
    ``history`` is every VIP allocated by earlier loads (never reused). ``memo`` keeps a service
    that gets the same VIPs as last time the very same object.
    """
    given = [v.ip for s in services for v in s.status.vips]
    history = set(history)
    allocators = {
        "MeshService": VipAllocator(MESH_SERVICE_CIDR, [*given, *history]),
        "MeshMultiZoneService": VipAllocator(MULTIZONE_CIDR, [*given, *history]),
    }
    taken = set(given)
    out: list[Service] = []
    for svc in services:
        if not svc.status.vips:
            kept = [ip for ip in previous.get((svc.kind, svc.mesh, svc.name), []) if ip not in taken]
            ips = kept or [allocators[svc.kind].allocate()]
            taken.update(ips)
            history.update(ips)
            kept_ips = tuple(ips)
            svc = memo.of(svc, kept_ips, with_vips, svc, kept_ips) if memo else with_vips(svc, kept_ips)
        out.append(svc)
    return out, frozenset(history)


def with_vips(svc: Service, ips: tuple[str, ...]) -> Service:
    return svc.model_copy(update={"status": svc.status.model_copy(update={"vips": [m.VIP(ip=ip) for ip in ips]})})


def update_status(ms: m.MeshService, index: DataplaneIndex, mesh: m.Mesh, connected: frozenset[str]) -> m.MeshService:
    """Kuma's status updater: identities, state, tls and dataplaneProxies of a local MeshService.

    ``index`` holds the mesh's Dataplanes with every inbound (Kuma matches all, not only healthy ones).
    """
    if not ms.is_local:
        return ms
    return status_of(ms, index.selected(ms), mesh.spec.mtls_enabled, connected)


def status_of(ms: m.MeshService, dps: Sequence[m.Dataplane], mtls: bool, connected: Collection[str]) -> m.MeshService:
    """``update_status`` given the Dataplanes ``ms`` selects and whether the mesh has mTLS: all it reads."""
    healthy = sum(1 for dp in dps if all_ports_ready(ms, dp))
    identities = sorted({i.service for dp in dps for i in dp.networking.inbound if i.service})
    spec = ms.spec.model_copy(
        update={
            "identities": [m.Identity(type="ServiceTag", value=v) for v in identities],
            "state": m.MeshServiceState.AVAILABLE if healthy else m.MeshServiceState.UNAVAILABLE,
        }
    )
    status = ms.status.model_copy(
        update={
            "tls": m.TLSStatus(status="Ready" if mtls else "NotReady"),
            "dataplane_proxies": m.DataplaneProxies(
                connected=sum(1 for dp in dps if dp.node_id in connected), healthy=healthy, total=len(dps)
            ),
        }
    )
    return ms.model_copy(update={"spec": spec, "status": status})


def all_ports_ready(ms: m.MeshService, dp: m.Dataplane) -> bool:
    """``buildDataplaneProxies``: every port has an inbound in state Ready matching its targetPort.

    As in Kuma, only ``state`` counts (not ``health.ready``), and a MeshService without ports
    counts every selected Dataplane as healthy.
    """
    ready = [i for i in dp.networking.inbound if i.state == m.InboundState.READY]
    return all(any(serves(i, p) for i in ready) for p in ms.spec.ports)


def update_multizone(mzs: m.MeshMultiZoneService, services: Sequence[m.MeshService]) -> m.MeshMultiZoneService:
    """``status.meshServices``: every MeshService of the mesh whose labels contain the selector's."""
    want = mzs.spec.selector.mesh_service.match_labels
    matched = [
        m.MatchedMeshService(name=ms.display_name, namespace=ms.namespace, zone=ms.zone, mesh=ms.mesh)
        for ms in services
        if ms.mesh == mzs.mesh and want and labels_match(want, ms.labels)
    ]
    matched.sort(key=lambda s: (s.name, s.namespace, s.zone, s.mesh))
    # buildMeshServicesMatchedCondition (meshmultizoneservice/status_updater.go), messages included.
    if matched:
        cond = m.Condition(
            type="MeshServicesMatched",
            status="True",
            reason="MatchesFound",
            message=f"Matched {len(matched)} MeshService(s)",
        )
    else:
        message = "Selector does not match any MeshService in this zone"
        cond = m.Condition(type="MeshServicesMatched", status="False", reason="NoMatchesFound", message=message)
    conditions = [cond]
    return mzs.model_copy(
        update={"status": mzs.status.model_copy(update={"mesh_services": matched, "conditions": conditions})}
    )
