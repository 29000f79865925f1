"""Endpoints per destination (Kuma's ``BuildEdsEndpointMap``, spec §3.3) and the CLAs built from them.

The map is keyed by the legacy destination name (a ``kuma.io/service`` value, or the legacy
MeshService/MeshMultiZoneService cluster name) and computed once per mesh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.match import DataplaneIndex, healthy_inbounds, labels_match, serves
from meshxds.resources.model import (
    SERVICE_TAG,
    ZONE_TAG,
    Dataplane,
    Inbound,
    MeshMultiZoneService,
    MeshService,
    MeshServiceState,
)
from meshxds.translators import protos as pb
from meshxds.translators.dataplanes import inbound_zone, interface
from meshxds.translators.memo import Memo
from meshxds.translators.names import ms_cluster_name, mzms_cluster_name

PRIORITY_LOCAL = 0
PRIORITY_REMOTE = 1


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """One upstream host of a destination; the same object is shared by every destination it serves."""

    address: str
    port: int
    tags: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    weight: int = 1
    zone: str | None = None
    priority: int = PRIORITY_LOCAL

    def content(self) -> Hashable:
        """Everything a CLA reads from this endpoint: equal content, equal ``LbEndpoint``."""
        tags, labels = tuple(sorted(self.tags.items())), tuple(sorted(self.labels.items()))
        return (self.address, self.port, tags, labels, self.weight, self.zone, self.priority)


EndpointMap = dict[str, list[Endpoint]]


def locality(local_zone: str, zone: str | None, aware: bool) -> tuple[str | None, int]:
    """Kuma's ``GetLocality``: no zone → no locality; a remote zone is priority 1 only when locality-aware."""
    if zone is None:
        return None, PRIORITY_LOCAL
    return zone, PRIORITY_REMOTE if aware and zone != local_zone else PRIORITY_LOCAL


def build_endpoint_map(view: MeshView, catalog: Catalog) -> EndpointMap:
    """Every destination's endpoints in one mesh, in Kuma's fill order."""
    out: EndpointMap = defaultdict(list)
    aware = view.mesh.spec.locality_aware
    cache: dict[tuple[int, int], Endpoint] = {}

    def endpoint(dp: Dataplane, inbound: Inbound) -> Endpoint:
        key = (id(dp), id(inbound))
        ep = cache.get(key)
        if ep is None:
            iface = interface(dp, inbound)
            zone, priority = locality(catalog.zone, inbound_zone(dp, inbound), aware)
            ep = Endpoint(
                iface.dataplane_advertised_ip, iface.dataplane_port, inbound.tags, dp.labels, 1, zone, priority
            )
            cache[key] = ep
        return ep

    # Local MeshServices: every healthy inbound of a matched Dataplane whose port matches a targetPort.
    index = DataplaneIndex(view.dataplanes, only_healthy=True)
    for ms in view.mesh_services:
        if not ms.is_local:
            continue
        for dp, inbounds in index.select(ms.spec.selector):
            for inbound in inbounds:
                for port in ms.spec.ports:
                    if serves(inbound, port):
                        out[ms_cluster_name(ms, port.port)].append(endpoint(dp, inbound))

    # Legacy kuma.io/service destinations: every healthy inbound under its service tag.
    for dp in view.dataplanes:
        for inbound in healthy_inbounds(dp):
            if inbound.service:
                out[inbound.service].append(endpoint(dp, inbound))

    # Remote MeshServices go through their zone's ZoneIngress; Kuma only does this with mTLS on.
    if view.mesh.spec.mtls_enabled:
        for ms in view.mesh_services:
            if not ms.is_local:
                for port in ms.spec.ports:
                    name = ms_cluster_name(ms, port.port)
                    out[name].extend(ingress_endpoints(catalog, ms.zone, name))

    # MeshMultiZoneServices: the matched MeshServices' endpoints for the same port number.
    for mzms in view.multizone_services:
        for ms in matched_mesh_services(view, mzms):
            if not ms.is_local and ms.spec.state != MeshServiceState.AVAILABLE:
                continue
            for mz_port in mzms.spec.ports:
                out[mzms_cluster_name(mzms, mz_port.port)].extend(out.get(ms_cluster_name(ms, mz_port.port), ()))
    return out


def ingress_endpoints(catalog: Catalog, zone: str, service: str) -> list[Endpoint]:
    """One endpoint per distinct public address:port of ``zone``'s ZoneIngresses."""
    seen: dict[tuple[str, int], Endpoint] = {}
    for zi in catalog.zone_ingresses:
        net = zi.spec.networking
        if zi.spec.zone != zone or not net.advertised_address or not net.advertised_port:
            continue
        key = (net.advertised_address, net.advertised_port)
        if key not in seen:
            tags = {SERVICE_TAG: service, ZONE_TAG: zone}
            seen[key] = Endpoint(key[0], key[1], tags, {}, 1, zone, PRIORITY_REMOTE)
    return list(seen.values())


def matched_mesh_services(view: MeshView, mzms: MeshMultiZoneService) -> list[MeshService]:
    """The MeshServices named in ``status.meshServices`` (by name or display name, namespace and zone)."""
    out: list[MeshService] = []
    for ref in mzms.status.mesh_services:
        for ms in view.mesh_services:
            if ref.name in (ms.name, ms.display_name) and ref.namespace == ms.namespace and ref.zone == ms.zone:
                out.append(ms)
                break
    return out


# --------------------------------------------------------------------------- CLA


def _filter_metadata(ep: Endpoint) -> pb.Metadata | None:
    """``envoy.lb`` and ``envoy.transport_socket_match`` = tags minus kuma.io/service; ``io.kuma.labels``."""
    tags = tuple(sorted((k, v) for k, v in ep.tags.items() if k != SERVICE_TAG))
    return _metadata(tags, tuple(sorted(ep.labels.items())))


@lru_cache(maxsize=8192)
def _metadata(tags: tuple[tuple[str, str], ...], labels: tuple[tuple[str, str], ...]) -> pb.Metadata | None:
    """Shared by every endpoint with the same tags and labels (most endpoints of a service)."""
    md: dict[str, pb.Struct] = {}
    if tags:
        md["envoy.lb"] = pb.struct(dict(tags))
        md["envoy.transport_socket_match"] = pb.struct(dict(tags))
    if labels:
        md["io.kuma.labels"] = pb.struct(dict(labels))
    return pb.Metadata(filter_metadata=md) if md else None


class ClaBuilder:
    """Builds CLAs, sharing one ``LbEndpoint`` message per endpoint across every CLA that lists it
    (and, given the previous build's ClaBuilder, across builds while the endpoint is unchanged)."""

    def __init__(self, previous: ClaBuilder | None = None) -> None:
        self._lb: Memo[int, pb.LbEndpoint] = Memo(previous._lb if previous is not None else None)
        self._content: dict[int, tuple[Endpoint, Hashable]] = {}  # keeps each ep alive so its id stays unique

    def release(self) -> None:
        self._lb.release()

    def content(self, ep: Endpoint) -> Hashable:
        hit = self._content.get(id(ep))
        if hit is None:
            hit = self._content[id(ep)] = (ep, ep.content())
        return hit[1]

    def contents(self, endpoints: Iterable[Endpoint]) -> tuple[Hashable, ...]:
        """The content key of a CLA's endpoints (with its cluster name, everything ``build`` reads)."""
        return tuple(self.content(ep) for ep in endpoints)

    def lb_endpoint(self, ep: Endpoint) -> pb.LbEndpoint:
        return self._lb.get(id(ep), lambda: _lb_endpoint(ep), lambda: self.content(ep))

    def build(self, cluster_name: str, endpoints: Iterable[Endpoint]) -> pb.ClusterLoadAssignment:
        """Kuma's ``ToLocalityLbEndpoints``: group by locality, sort hosts by address and port."""
        groups: dict[tuple[str | None, int], list[Endpoint]] = defaultdict(list)
        for ep in endpoints:
            groups[(ep.zone, ep.priority)].append(ep)
        ordered = sorted(groups.items(), key=lambda kv: (kv[0][0] or "", len(kv[1]), kv[0][1]))
        return pb.ClusterLoadAssignment(
            cluster_name=cluster_name,
            endpoints=[self._group(zone, priority, eps) for (zone, priority), eps in ordered],
        )

    def _group(self, zone: str | None, priority: int, eps: Sequence[Endpoint]) -> pb.LocalityLbEndpoints:
        hosts = sorted(eps, key=lambda e: (e.address, e.port))
        return pb.LocalityLbEndpoints(
            locality=pb.Locality(zone=zone) if zone is not None else None,
            lb_endpoints=[self.lb_endpoint(e) for e in hosts],
            priority=priority,
        )


def _lb_endpoint(ep: Endpoint) -> pb.LbEndpoint:
    return pb.LbEndpoint(
        endpoint=pb.Endpoint(address=pb.socket_address(ep.address, ep.port)),
        metadata=_filter_metadata(ep),
        load_balancing_weight=ep.weight if ep.weight > 0 else None,
    )


def subset(endpoints: Iterable[Endpoint], tags: Mapping[str, str]) -> list[Endpoint]:
    """Endpoints carrying every non-service tag of a legacy outbound (Kuma filters CLAs this way)."""
    extra = {k: v for k, v in tags.items() if k != SERVICE_TAG}
    return [e for e in endpoints if labels_match(extra, e.tags)]
