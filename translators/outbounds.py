"""Which destinations each proxy gets (Kuma's ``resolveVIPOutbounds``, spec §3.2).

A mesh's candidate outbounds are computed once (``MeshOutbounds``); each proxy then filters them
by mode, ``reachableServices``/``reachableBackends`` and its own inbounds. Proxies without a
transparent proxy only get their explicit ``networking.outbound[]`` entries.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from meshxds.resources.catalog import MeshView
from meshxds.resources.model import (
    NAMESPACE_LABEL,
    PROTOCOL_TAG,
    SERVICE_TAG,
    BackendRef,
    Dataplane,
    MeshMultiZoneService,
    MeshService,
    MeshServicesMode,
    MultiZonePort,
    Port,
    find_port,
)
from meshxds.resources.references import refers_to
from meshxds.translators.dataplanes import common_protocol, exposed_inbounds, interface, overlap, parse_protocol
from meshxds.translators.endpoints import EndpointMap
from meshxds.translators.names import cluster_name, kri, legacy_cluster_name, legacy_route_name
from meshxds.translators.tls import sni_for_resource, sni_from_tags, spiffe_ids

LEGACY = "Legacy"
MESH_SERVICE = "MeshService"
MULTI_ZONE = "MeshMultiZoneService"

LEGACY_VIP_BASE = ipaddress.IPv4Address("240.0.0.0")  # KUMA_DNS_SERVER_CIDR=240.0.0.0/4
LEGACY_VIP_PORT = 80  # KUMA_DNS_SERVICE_SERVICE_VIP_PORT: universal legacy VIPs listen on :80 only
DEFAULT_OUTBOUND_ADDRESS = "127.0.0.1"
# makeSplits: a MeshService port whose appProtocol is outside this set gets no cluster at all.
ACCEPTED_PROTOCOLS = ("", "tcp", "kafka", "http", "http2", "grpc")


class Skip(StrEnum):
    """Why a proxy lacks a VIP outbound: the rules of ``select_legacy``/``select_resources``, named."""

    NO_TRANSPARENT_PROXY = "the proxy has no transparent proxy: it gets only its networking.outbound[] entries"
    NOT_IN_REACHABLE_SERVICES = "the service is not in the proxy's transparentProxying.reachableServices"
    REACHABLE_SERVICES_ONLY = "the proxy sets reachableServices without reachableBackends, so no MeshService outbounds"
    NO_REACHABLE_BACKENDS = "mode ReachableBackends and the proxy sets no transparentProxying.reachableBackends"
    NOT_SELECTED = "not selected by the proxy's reachableBackends refs (or explicit backendRef outbounds)"


@dataclass(frozen=True, slots=True, eq=False)
class Destination:
    """One cluster's worth of upstream: a MeshService/MeshMultiZoneService port or a legacy service."""

    kind: str
    cluster: str  # cluster and CLA name
    service: str  # endpoint map key (the legacy destination name)
    protocol: str
    kri: str = ""  # with section name; empty for legacy destinations
    kri_resource: str = ""  # without section name (what a reachableBackends ref without port selects)
    tags: Mapping[str, str] = field(default_factory=dict)  # legacy outbound tags
    # mTLS: Kuma's SNI and the SPIFFE IDs the upstream must present (none: any identity of the mesh).
    sni: str = ""
    identities: tuple[str, ...] = ()

    def content(self) -> Hashable:
        """Everything the cluster, route and listener of this destination read from it."""
        tags = tuple(sorted(self.tags.items()))
        return (self.kind, self.cluster, self.service, self.protocol, self.kri, self.kri_resource, tags,
                self.sni, self.identities)  # fmt: skip

    @property
    def route_name(self) -> str:
        """RDS name: the KRI for real resources (Kuma), ``outbound:<cluster>`` for legacy ones."""
        return self.kri or legacy_route_name(self.cluster)


@dataclass(frozen=True, slots=True)
class Outbound:
    address: str
    port: int
    destination: Destination


def outbound_inputs(view: MeshView, endpoints: EndpointMap) -> Hashable:
    """Everything ``MeshOutbounds`` and the outbound plans read: equal inputs give equal destinations and plans.

    Besides services and policies, only the endpoints' protocol tags (a legacy destination's protocol) and,
    outside Exclusive mode, the legacy VIPs come from the Dataplanes: moving an endpoint changes neither.
    """
    legacy = legacy_vips(view.dataplanes) if view.mesh.spec.mode != MeshServicesMode.EXCLUSIVE else {}
    protocols = {name: tuple(e.tags.get(PROTOCOL_TAG) for e in eps) for name, eps in endpoints.items()}
    return (view.mesh, view.mesh_services, view.multizone_services, view.policies, legacy, protocols)


class MeshOutbounds:
    """Every destination of one mesh and its VIP outbounds, built once and shared by all its proxies."""

    def __init__(self, view: MeshView, endpoints: EndpointMap) -> None:
        self.view = view
        self.mode = view.mesh.spec.mode
        self._endpoints = endpoints
        self._legacy: dict[str, Destination] = {}
        self._ms: dict[tuple[int, int], Destination] = {}
        self.legacy_outbounds: list[Outbound] = []
        self.resource_outbounds: list[Outbound] = []
        if self.mode != MeshServicesMode.EXCLUSIVE:  # Exclusive doesn't even read the legacy VIPs
            for service, ip in legacy_vips(view.dataplanes).items():
                self.legacy_outbounds.append(Outbound(ip, LEGACY_VIP_PORT, self.legacy({SERVICE_TAG: service})))
        services: list[MeshService | MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        taken = {(ob.address, ob.port) for ob in self.legacy_outbounds}
        for res in services:
            for vip in res.status.vips:
                for port in res.spec.ports:
                    dest = self.resource(res, port)
                    if dest is not None and (vip.ip, port.port) not in taken:  # a clashing VIP:port: first wins
                        taken.add((vip.ip, port.port))
                        self.resource_outbounds.append(Outbound(vip.ip, port.port, dest))
        self._by_kri: dict[str, list[int]] = defaultdict(list)
        for n, ob in enumerate(self.resource_outbounds):
            self._by_kri[ob.destination.kri].append(n)
            self._by_kri[ob.destination.kri_resource].append(n)
        self._named: dict[tuple[str, str], list[MeshService | MeshMultiZoneService]] = defaultdict(list)
        for res in services:
            self._named[(MESH_SERVICE if isinstance(res, MeshService) else MULTI_ZONE, res.display_name)].append(res)
        # Every VIP outbound's (address, port): by canonical address and port, and the unspecified ones by port.
        self._exact: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
        self._any: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for ob in self.legacy_outbounds + self.resource_outbounds:
            canonical, _, unspecified = canonical_address(ob.address)
            if unspecified:
                self._any[ob.port].append((ob.address, ob.port))
            else:
                self._exact[(canonical, ob.port)].append((ob.address, ob.port))

    # -- destinations (memoised: one object per cluster) ------------------------------------------
    def legacy(self, tags: Mapping[str, str]) -> Destination:
        name = legacy_cluster_name(tags)
        dest = self._legacy.get(name)
        if dest is None:
            service = tags[SERVICE_TAG]
            protocols = (parse_protocol(e.tags.get(PROTOCOL_TAG)) for e in self._endpoints.get(service, ()))
            mesh = self.view.name
            dest = Destination(
                LEGACY, name, service, common_protocol(protocols), tags=dict(tags),
                sni=sni_from_tags(dict(tags)), identities=(f"spiffe://{mesh}/{service}",),
            )  # fmt: skip
            self._legacy[name] = dest
        return dest

    def resource(self, res: MeshService | MeshMultiZoneService, port: Port | MultiZonePort) -> Destination | None:
        """A MeshService or MeshMultiZoneService port; None when Kuma would build no cluster for it."""
        key = (id(res), port.port)
        dest = self._ms.get(key)
        if dest is None:
            protocol = port.app_protocol or "tcp"
            if protocol not in ACCEPTED_PROTOCOLS:
                return None
            kind = MESH_SERVICE if isinstance(res, MeshService) else MULTI_ZONE
            name = cluster_name(res, port.port)
            mesh = self.view.name
            if isinstance(res, MeshService):
                ids = spiffe_ids(mesh, [(i.type, i.value) for i in res.spec.identities or ()])
                sni = sni_for_resource(res.name, mesh, kind, port.port)
            else:
                ids, sni = (), sni_for_resource(res.display_name, mesh, kind, port.port)
            dest = Destination(
                kind, name, name, protocol, kri(res, port.section_name), kri(res), sni=sni, identities=ids
            )
            self._ms[key] = dest
        return dest

    # -- resolving references ---------------------------------------------------------------------
    def _resources(
        self, kind: str, name: str | None, namespace: str, labels: Mapping[str, str] | None
    ) -> list[MeshService | MeshMultiZoneService]:
        """What a backendRef/reachableBackends ref names: by labels, else a local resource by name."""
        pool: Iterable[MeshService | MeshMultiZoneService]
        if kind == MESH_SERVICE:
            pool = self.view.mesh_services
        elif kind == MULTI_ZONE:
            pool = self.view.multizone_services
        else:
            return []  # MeshExternalService etc. are not modelled
        if labels:
            return [r for r in pool if refers_to(r, name, namespace, labels)]
        candidates = self._named.get((kind, name), ()) if name is not None else ()  # by display name, in pool order
        return [r for r in candidates if refers_to(r, name, namespace, labels)]

    def _port_destination(self, res: MeshService | MeshMultiZoneService, port: int) -> Destination | None:
        """Kuma's ``FindPortByName(str(port))``: by name or number."""
        found = find_port(res, str(port))
        return self.resource(res, found) if found is not None else None

    def selected_backends(self, dp: Dataplane) -> set[str] | None:
        """Kuma's ``GetReachableBackends``: KRIs (with or without section) a proxy selected, or None for all."""
        namespace = dp.labels.get(NAMESPACE_LABEL, "")
        explicit = [o.backend_ref for o in dp.networking.outbound if o.backend_ref is not None]
        selected = self._select(explicit, namespace)  # explicit backendRefs win if they select anything
        if selected:
            return selected
        tp = dp.networking.transparent_proxying
        if tp is None or tp.reachable_backends is None:
            return None
        return self._select(tp.reachable_backends.refs, namespace)

    def _select(self, refs: Sequence[BackendRef], namespace: str) -> set[str]:
        """``GetReachableBackends``' processRef: a port that matches none of a service's ports selects them all.

        Kuma falls through to its all-ports loop there (the resources stage warns about such refs).
        A ref resolves in its own namespace, else the proxy's (an outbound backendRef has no namespace).
        """
        selected: set[str] = set()
        for ref in refs:
            selected |= self.resolve_ref(ref, namespace)
        return selected

    def resolve_ref(self, ref: BackendRef, namespace: str) -> set[str]:
        """One ``reachableBackends``/``backendRef`` entry: the KRIs it selects (unknown names select nothing).

        ``processRef``: a port that matches none of a service's ports selects all of them.
        """
        selected: set[str] = set()
        for res in self._resources(ref.kind, ref.name, ref.namespace or namespace, ref.labels):
            port = find_port(res, str(ref.port)) if ref.port is not None else None
            selected.add(kri(res, port.section_name) if port is not None else kri(res))
        return selected

    def explicit(self, dp: Dataplane) -> list[Outbound]:
        """A proxy without transparent proxying: its ``networking.outbound[]`` entries, nothing else.

        Two entries on one address:port can't both listen: the first wins, as with clashing VIPs.
        """
        namespace = dp.labels.get(NAMESPACE_LABEL, "")
        out: list[Outbound] = []
        taken: set[tuple[str, int]] = set()
        for o in dp.networking.outbound:
            address = o.address or DEFAULT_OUTBOUND_ADDRESS
            if (address, o.port) in taken:
                continue
            dest: Destination | None = None
            if o.backend_ref is not None:
                ref = o.backend_ref
                found = self._resources(ref.kind, ref.name, ref.namespace or namespace, ref.labels)
                if found and ref.port is not None:
                    dest = self._port_destination(found[0], ref.port)
            elif o.tags and SERVICE_TAG in o.tags:
                dest = self.legacy(o.tags)
            if dest is not None:
                taken.add((address, o.port))
                out.append(Outbound(address, o.port, dest))
        return out

    # -- per proxy --------------------------------------------------------------------------------
    def selection_key(self, dp: Dataplane) -> Hashable:
        """Everything but the proxy's own inbounds that decides its outbounds: proxies sharing it share work.

        Plain tuples of the fields (a JSON dump of them cost more than the rest of a proxy's outbound work).
        """
        net = dp.networking
        tp = net.transparent_proxying
        tp_key = None
        if tp is not None:
            backends = tp.reachable_backends
            tp_key = (tuple(tp.reachable_services), None if backends is None else tuple(map(_ref_key, backends.refs)))
        out = tuple(
            (o.address, o.port, _items(o.tags), None if o.backend_ref is None else _ref_key(o.backend_ref))
            for o in net.outbound
        )
        return (tp_key, out, dp.labels.get(NAMESPACE_LABEL, ""))

    def select_legacy(self, dp: Dataplane) -> list[Outbound]:
        """A transparent proxy's legacy VIP outbounds: they depend on its ``reachableServices`` only."""
        tp = dp.networking.transparent_proxying
        if tp is None or not dp.transparent:
            return []
        reachable = set(tp.reachable_services)
        return [ob for ob in self.legacy_outbounds if reachable_skip(reachable, ob) is None]

    def resource_gate(self, dp: Dataplane) -> tuple[Skip | None, set[str] | None]:
        """Kuma's per-proxy checks (a) and (b) before any MeshService outbound, and the selected KRIs.

        (None, None): every MeshService outbound; (None, set): the selected ones; (reason, _): none.
        """
        tp = dp.networking.transparent_proxying
        if tp is None or not dp.transparent:
            return Skip.NO_TRANSPARENT_PROXY, None
        selected = self.selected_backends(dp)
        if tp.reachable_services and selected is None:
            return Skip.REACHABLE_SERVICES_ONLY, None
        if tp.reachable_backends is None and self.mode == MeshServicesMode.REACHABLE_BACKENDS:
            return Skip.NO_REACHABLE_BACKENDS, None
        return None, selected

    def resource_skip(self, dp: Dataplane, outbound: Outbound) -> Skip | None:
        """Why a transparent proxy does not get this MeshService outbound (None: it does), as ``select_resources``."""
        skip, selected = self.resource_gate(dp)
        if skip is not None:
            return skip
        dest = outbound.destination
        if selected is not None and dest.kri not in selected and dest.kri_resource not in selected:
            return Skip.NOT_SELECTED
        return None

    def legacy_skip(self, dp: Dataplane, outbound: Outbound) -> Skip | None:
        """Why a proxy does not get this legacy VIP outbound (None: it does), as ``select_legacy``."""
        tp = dp.networking.transparent_proxying
        if tp is None or not dp.transparent:
            return Skip.NO_TRANSPARENT_PROXY
        return reachable_skip(set(tp.reachable_services), outbound)

    def for_proxy(self, dp: Dataplane) -> list[Outbound]:
        """Every outbound ``dp`` gets, in the order ``MeshTranslator.proxy`` lays them out (legacy first)."""
        selected = self.select_legacy(dp) + self.select_resources(dp) if dp.transparent else self.explicit(dp)
        collisions = self.own_inbound_collisions(dp)
        return [ob for ob in selected if (ob.address, ob.port) not in collisions]

    def select_resources(self, dp: Dataplane) -> list[Outbound]:
        """A transparent proxy's MeshService/MeshMultiZoneService VIP outbounds, in mesh order."""
        skip, selected = self.resource_gate(dp)
        if skip is not None:
            return []
        if selected is None:
            return list(self.resource_outbounds)
        picked = sorted({n for k in selected for n in self._by_kri.get(k, ())})  # by KRI with or without port
        return [self.resource_outbounds[n] for n in picked]

    def own_inbound_collisions(self, dp: Dataplane) -> set[tuple[str, int]]:
        """VIP outbounds that are this proxy's own inbound interfaces (Kuma skips them; ``overlap`` as lookups)."""
        hits: set[tuple[str, int]] = set()
        if not dp.transparent:
            return hits
        for inbound in dp.networking.inbound:
            iface = interface(dp, inbound)
            for ip, port in ((iface.dataplane_ip, iface.dataplane_port), (iface.workload_ip, iface.workload_port)):
                canonical, parsed, unspecified = canonical_address(ip)
                hits.update(self._exact.get((canonical, port), ()))
                if parsed:
                    hits.update(self._any.get(port, ()))
                if unspecified:  # rare: may overlap any outbound on the port
                    for (_, p), pairs in self._exact.items():
                        hits.update(pair for pair in pairs if p == port and overlap(pair[0], ip))
        return hits


def _items(mapping: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    return None if mapping is None else tuple(sorted(mapping.items()))


def _ref_key(ref: BackendRef) -> Hashable:
    return (ref.kind, ref.name, ref.namespace, ref.port, _items(ref.labels))


@lru_cache(maxsize=65536)
def canonical_address(address: str) -> tuple[str, bool, bool]:
    """(canonical form, parsable, unspecified): Kuma's ``overlap`` is equal canonical forms or an unspecified side."""
    if _is_canonical_ipv4(address):  # the common case, without ipaddress's parse (every proxy has its own IPs)
        return address, True, address == "0.0.0.0"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address, False, False
    return str(ip), True, ip.is_unspecified


def _is_canonical_ipv4(address: str) -> bool:
    """Four decimal octets 0-255 without leading zeros: what ``str(ip_address(address))`` gives back unchanged."""
    octets = address.split(".")
    return len(octets) == 4 and all(
        o.isascii() and o.isdigit() and (o == "0" or o[0] != "0") and int(o) <= 255 for o in octets
    )


def legacy_vips(dataplanes: Iterable[Dataplane]) -> dict[str, str]:
    """A VIP per ``kuma.io/service`` from 240.0.0.0/4, in sorted order so the same input gives the same VIPs.

    Kuma persists its allocation in ``kuma-<mesh>-dns-vips``; files carry no state, so we derive it.
    """
    services = sorted({i.service for dp in dataplanes for i in exposed_inbounds(dp) if i.service})
    return {s: str(LEGACY_VIP_BASE + n + 1) for n, s in enumerate(services)}


def reachable_skip(reachable: set[str], outbound: Outbound) -> Skip | None:
    """Kuma's legacy filter: with ``reachableServices`` set, only the services it lists."""
    if reachable and outbound.destination.service not in reachable:
        return Skip.NOT_IN_REACHABLE_SERVICES
    return None
