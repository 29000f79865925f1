"""The translators' entry point: a Catalog in, every proxy's Envoy resources out.

Work is shared at three levels so cost grows with services + proxies, not their product:
per mesh (endpoint map, destinations, one Cluster/CLA/Listener/RouteConfiguration object per
destination), per outbound selection (proxies with the same reachable settings share one set of
legacy outbounds and one of MeshService outbounds), and per proxy only its inbounds. Given the
previous build's ``MeshTranslator``, unchanged messages and sets are carried over (``memo.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.model import Dataplane, Inbound, MeshMultiZoneService, MeshService
from meshxds.resources.mtp import Rule, inbound_rules, selects
from meshxds.translators import protos as pb
from meshxds.translators.clusters import local_cluster, outbound_cluster
from meshxds.translators.dataplanes import (
    SERVICELESS_PORT,
    InboundInterface,
    exposed_inbounds,
    inbound_protocol,
    interface,
    is_http,
)
from meshxds.translators.dns import dns_listener, ipv6_enabled, mesh_vip_domains, tp_enabled
from meshxds.translators.endpoints import ClaBuilder, Endpoint, build_endpoint_map, subset
from meshxds.translators.listeners import (
    InboundSecurity,
    inbound_chain,
    inbound_listener,
    outbound_listener,
    secure_chains,
)
from meshxds.translators.memo import Memo, same_items
from meshxds.translators.names import inbound_listener_name, local_cluster_name, stat_name
from meshxds.translators.outbounds import LEGACY, Destination, MeshOutbounds, Outbound, outbound_inputs
from meshxds.translators.passthrough import passthrough
from meshxds.translators.targeting import MeshTargeting, OutboundPlan
from meshxds.translators.tls import Secret


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """A group of resources that travel together (a proxy's own, or an outbound selection's)."""

    clusters: tuple[pb.Cluster, ...] = ()
    endpoints: tuple[pb.ClusterLoadAssignment, ...] = ()
    listeners: tuple[pb.Listener, ...] = ()
    routes: tuple[pb.RouteConfiguration, ...] = ()
    secrets: tuple[Secret, ...] = ()  # SDS: a proxy's identity and its mesh's CA (only in its own set)

    @property
    def size(self) -> int:
        return len(self.clusters) + len(self.endpoints) + len(self.listeners) + len(self.routes) + len(self.secrets)


EMPTY = ResourceSet()


@dataclass(frozen=True, slots=True)
class ProxyResources:
    """One proxy's resources: ``own`` (its inbounds) plus its outbounds, ``legacy`` and ``shared``.

    ``legacy`` (legacy VIP outbounds: they depend only on ``reachableServices``) and ``shared`` (the
    rest) are the very same ResourceSet objects for every proxy of the mesh with the same selection,
    so consumers (the snapshot builder) can do per-selection work once. Kept apart, a mesh where every
    proxy reaches its own few MeshServices still shares the one big legacy set.
    """

    node_id: str
    own: ResourceSet
    shared: ResourceSet
    legacy: ResourceSet = EMPTY
    dns: ResourceSet = EMPTY  # the ``kuma:dns`` listener (translators/dns.py), shared by equal tables

    @property
    def shared_sets(self) -> tuple[ResourceSet, ...]:
        """The non-empty outbound sets (at least one), legacy first as Kuma orders outbounds, then DNS."""
        sets = tuple(rs for rs in (self.legacy, self.shared, self.dns) if rs.size)
        return sets or (self.shared,)

    @property
    def clusters(self) -> tuple[pb.Cluster, ...]:
        return self.own.clusters + self.legacy.clusters + self.shared.clusters

    @property
    def endpoints(self) -> tuple[pb.ClusterLoadAssignment, ...]:
        return self.own.endpoints + self.legacy.endpoints + self.shared.endpoints

    @property
    def listeners(self) -> tuple[pb.Listener, ...]:
        return self.own.listeners + self.legacy.listeners + self.shared.listeners + self.dns.listeners

    @property
    def routes(self) -> tuple[pb.RouteConfiguration, ...]:
        return self.own.routes + self.legacy.routes + self.shared.routes


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """Drop repeats of the same object (not of equal names: those are real conflicts, caught later)."""
    seen: set[int] = set()
    out = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ProxyInputs:
    """What a proxy's translation reads from its Dataplane: own resources and the keys of its outbound sets."""

    dataplane: Dataplane
    own: ResourceSet
    selection: Hashable  # MeshOutbounds.selection_key
    collisions: frozenset[tuple[str, int]]  # VIP outbounds that are its own inbounds
    policies: str  # MeshTargeting.key: the policies that apply to it


# (service, protocol, app cluster, named, security): what decides an inbound's mTLS filter chains.
SecureKey = tuple[str, str, str, bool, InboundSecurity]


# (kind, selection, own-inbound collisions, applying policies): what decides one outbound ResourceSet of a proxy.
BundleKey = tuple[str, Hashable, frozenset[tuple[str, int]], str]


class MeshTranslator:
    """Translates the proxies of one mesh, memoising every shared resource.

    Given the previous build's translator of the same mesh, it reuses every message whose inputs are
    unchanged: a proxy's own resources while its Dataplane is equal, a destination's Cluster, CLA,
    route and listeners while the destination (and, for the CLA, its endpoints) is, and an outbound
    selection's ResourceSet while it would hold the very same messages. Memo keys use ``id()`` of
    Destinations, which ``MeshOutbounds`` keeps alive for the whole build.
    """

    def __init__(self, view: MeshView, catalog: Catalog, previous: MeshTranslator | None = None) -> None:
        self.view = view
        self.endpoint_map = build_endpoint_map(view, catalog)
        old = previous
        # Destinations, outbound plans and policies depend on services, policies and the endpoints' protocols only:
        # when those are equal (an endpoint moved, a Dataplane came or went) the previous build's objects carry over,
        # so every id()-keyed memo below and each proxy's outbound keys stay valid.
        self._outbound_inputs = outbound_inputs(view, self.endpoint_map)
        self._carried = old is not None and old._outbound_inputs == self._outbound_inputs
        self.outbounds: MeshOutbounds
        self.targeting: MeshTargeting
        if old is not None and self._carried:
            self.outbounds, self.targeting = old.outbounds, old.targeting
        else:
            self.outbounds = MeshOutbounds(view, self.endpoint_map)
            self.targeting = MeshTargeting(view, self.outbounds)  # routes and policies (MeshHTTPRoute, MeshTimeout...)
        self._cla: ClaBuilder = ClaBuilder(old._cla if old else None)
        self._clusters: Memo[tuple[int, str], pb.Cluster] = Memo(old._clusters if old else None)
        self._clas: Memo[int, pb.ClusterLoadAssignment] = Memo(old._clas if old else None)
        self._routes: Memo[tuple[int, str], pb.RouteConfiguration] = Memo(old._routes if old else None)
        self._listeners: Memo[tuple[str, int, bool, int, str], pb.Listener] = Memo(old._listeners if old else None)
        self._locals: Memo[tuple[str, str, int, str, bool], pb.Cluster] = Memo(old._locals if old else None)
        self._chains: Memo[tuple[str, str, str, bool, InboundSecurity | None], pb.FilterChain] = Memo(
            old._chains if old else None
        )
        self._secure: Memo[SecureKey, list[pb.FilterChain]] = Memo(old._secure if old else None)
        self._bundles: dict[BundleKey, ResourceSet] = {}
        self._old_bundles = old._bundles if old else {}
        # node id → its Dataplane, own resources and outbound keys; reused while the Dataplane is equal
        self._own: dict[str, ProxyInputs] = {}
        self._old_own = old._own if old else {}
        # Mesh mTLS: the mesh name when on ("" when off); with the Mesh fields below, what decides own resources.
        spec = view.mesh.spec
        self._mtls = view.name if spec.mtls_enabled else ""
        self._security_inputs = (self._mtls, spec.mtls_mode, view.traffic_permissions, spec.passthrough)
        if old is not None and old._security_inputs != self._security_inputs:
            self._old_own = {}  # the same Dataplane gets different inbound listeners now
        # MeshTrafficPermission rules by the selecting policies (Kuma's rule computation is exponential in tags)
        self._rules: dict[tuple[int, ...], tuple[Rule, ...]] = {}
        self._securities: dict[tuple[tuple[int, ...], str], InboundSecurity] = {}
        # DNS: the mesh's names once; a ResourceSet per listener message (equal tables share one message)
        legacy_vips = {ob.destination.service: ob.address for ob in self.outbounds.legacy_outbounds}
        services: list[MeshService | MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        self.vip_domains = mesh_vip_domains(view.mesh.spec.mode, legacy_vips, services)
        self._dns_ports = catalog.dns_ports
        self._dns: dict[tuple[BundleKey, BundleKey, int, bool], ResourceSet] = {}
        self._dns_sets: dict[int, tuple[pb.Listener, ResourceSet]] = {}
        self._old_dns_sets = old._dns_sets if old else {}

    def release(self) -> None:
        """Every proxy is translated: drop what is left of the previous build, so at most one lives on."""
        for memo in (
            self._clusters,
            self._clas,
            self._routes,
            self._listeners,
            self._locals,
            self._chains,
            self._secure,
        ):
            memo.release()
        self._cla.release()
        self._old_bundles = {}
        self._old_own = {}
        self._old_dns_sets = {}

    def endpoints(self, dest: Destination) -> list[Endpoint]:
        """The endpoints of ``dest``'s CLA (a legacy outbound's tag subset of its service)."""
        endpoints = self.endpoint_map.get(dest.service, [])
        return subset(endpoints, dest.tags) if dest.kind == LEGACY else endpoints

    def _cluster(self, dest: Destination, policies: str) -> tuple[pb.Cluster, pb.ClusterLoadAssignment]:
        mtls = self._mtls
        cluster = self._clusters.get(
            (id(dest), policies),
            lambda: outbound_cluster(dest, self.targeting.cluster(dest, policies), mtls),
            lambda: (self.targeting.cluster_content(dest, policies), mtls),
        )
        cla = self._clas.get(
            id(dest),
            lambda: self._cla.build(dest.cluster, self.endpoints(dest)),
            lambda: (dest.cluster, self._cla.contents(self.endpoints(dest))),
        )
        return cluster, cla

    def _route(self, outbound: Outbound, plan: OutboundPlan, policies: str) -> pb.RouteConfiguration | None:
        dest, route = outbound.destination, plan.route
        if route is None:
            return None
        return self._routes.get((id(dest), policies), lambda: route, lambda: plan.content)

    def _listener(self, outbound: Outbound, transparent: bool, plan: OutboundPlan, policies: str) -> pb.Listener:
        address, port, dest = outbound.address, outbound.port, outbound.destination
        tcp = plan.tcp if plan.kind == "tcp" else None
        return self._listeners.get(
            (address, port, transparent, id(dest), policies),
            lambda: outbound_listener(outbound, transparent, tcp),
            lambda: (address, port, transparent, plan.kind, plan.content),
        )

    def _bundle(
        self,
        key: BundleKey,
        dp: Dataplane,
        select: Callable[[Dataplane], list[Outbound]],
        skip: frozenset[str] = frozenset(),
    ) -> ResourceSet:
        """The ResourceSet of ``select(dp)`` minus ``key``'s collisions: one per key and build.

        ``skip`` names clusters another set of the proxy already holds (a route's backend may be another
        set's destination); ``key`` must decide it.
        """
        bundle = self._bundles.get(key)
        if bundle is None:
            collisions, policies = key[2], key[3]
            selected = [ob for ob in select(dp) if (ob.address, ob.port) not in collisions]
            plans = [(ob, self.targeting.plan(ob, policies)) for ob in selected]
            plans = [(ob, plan) for ob, plan in plans if plan.kind != "none"]
            pairs = [self._cluster(d, policies) for _, plan in plans for d in plan.dests if d.cluster not in skip]
            routes = (self._route(ob, plan, policies) for ob, plan in plans)
            bundle = ResourceSet(
                clusters=_unique(c for c, _ in pairs),
                endpoints=_unique(e for _, e in pairs),
                listeners=tuple(self._listener(ob, dp.transparent, plan, policies) for ob, plan in plans),
                routes=_unique(r for r in routes if r is not None),
            )
            old = self._old_bundles.get(key)
            if old is not None and _same_set(old, bundle):
                bundle = old  # the very same messages: keep the object, so its encoded layer is reused too
            self._bundles[key] = bundle
        return bundle

    def _local_cluster(self, name: str, iface: InboundInterface, protocol: str, transparent: bool) -> pb.Cluster:
        ip, port = iface.workload_ip, iface.workload_port
        return self._locals.get((name, ip, port, protocol, transparent),
                                lambda: local_cluster(name, ip, port, protocol, transparent))  # fmt: skip

    def _inbound_chain(
        self, service: str, protocol: str, cluster: str, named: bool, security: InboundSecurity | None = None
    ) -> pb.FilterChain:
        return self._chains.get(
            (service, protocol, cluster, named, security),
            lambda: inbound_chain(service, protocol, cluster, named, security),
        )

    def _secure_chains(self, key: SecureKey, plain: pb.FilterChain) -> list[pb.FilterChain]:
        """The mTLS chains of an inbound, shared by every inbound with the same key (all HTTP ones of a service)."""
        return self._secure.get(key, lambda: secure_chains(plain, self._inbound_chain(*key), key[4]))

    def _security(self, dp: Dataplane, inbound: Inbound, listener: str) -> InboundSecurity | None:
        """Mesh mTLS for one inbound, with the MeshTrafficPermission rules that select it (none: deny all)."""
        if not self._mtls:
            return None
        view = self.view
        selected = tuple(p for p in view.traffic_permissions if selects(p, dp, inbound, view.mesh_services))
        # Only a network RBAC filter names the listener: HTTP chains stay shared by every proxy of the service.
        prefix = "" if is_http(inbound_protocol(inbound)) else stat_name(listener)
        key = (tuple(map(id, selected)), prefix)  # the policies live as long as the view, so their ids are stable
        security = self._securities.get(key)
        if security is None:
            rules = self._rules.get(key[0])
            if rules is None:
                rules = self._rules[key[0]] = tuple(inbound_rules(selected))
            security = self._securities[key] = InboundSecurity(self._mtls, view.mesh.spec.mtls_mode, rules, prefix)
        return security

    def _own_resources(self, dp: Dataplane) -> ResourceSet:
        """The proxy's inbounds: its listeners and the app clusters behind them (read from ``dp`` only)."""
        transparent = dp.transparent
        clusters: dict[str, pb.Cluster] = {}
        listeners: list[pb.Listener] = []
        for inbound in exposed_inbounds(dp):
            if inbound.port == SERVICELESS_PORT:
                continue  # Kuma's IsServiceLess: no listener, no cluster
            iface = interface(dp, inbound)
            protocol = inbound_protocol(inbound)
            name = local_cluster_name(iface.workload_port)
            # Inbounds sharing a servicePort share the app cluster; Kuma's ResourceSet.Add keeps the last one.
            clusters.pop(name, None)
            clusters[name] = self._local_cluster(name, iface, protocol, transparent)
            service = inbound.service or inbound_listener_name(iface.dataplane_ip, iface.dataplane_port)
            named = bool(inbound.service)
            chain = self._inbound_chain(service, protocol, name, named)
            security = self._security(dp, inbound, inbound_listener_name(iface.dataplane_ip, iface.dataplane_port))
            if security is None:
                listeners.append(inbound_listener(inbound, iface, chain, transparent))
            else:
                chains = self._secure_chains((service, protocol, name, named, security), chain)
                listeners.append(inbound_listener(inbound, iface, chains, transparent))
        tp = dp.networking.transparent_proxying
        if tp is not None:  # the transparent proxy's catch-all outbound (Mesh networking.outbound.passthrough)
            more_listeners, more_clusters = passthrough(tp, self.view.mesh.spec.passthrough)
            listeners += more_listeners
            clusters.update((c.name, c) for c in more_clusters)
        return ResourceSet(clusters=tuple(clusters.values()), listeners=tuple(listeners))

    def _inputs(self, dp: Dataplane) -> ProxyInputs:
        """``dp``'s own resources and outbound keys: the previous build's while ``dp`` is equal."""
        hit = self._own.get(dp.node_id)
        if hit is not None and hit.dataplane is dp:
            return hit
        old = self._old_own.get(dp.node_id)
        if old is not None and (old.dataplane is dp or old.dataplane == dp):
            # Other destinations or policies than last time: the outbound keys may differ.
            hit = replace(old, dataplane=dp) if self._carried else replace(old, dataplane=dp, **self._outbound_keys(dp))
        else:
            own = self._own_resources(dp)
            hit = ProxyInputs(dp, own, self.outbounds.selection_key(dp), **self._outbound_keys(dp))
        self._own[dp.node_id] = hit
        return hit

    def _outbound_keys(self, dp: Dataplane) -> dict[str, Any]:
        return {
            "collisions": frozenset(self.outbounds.own_inbound_collisions(dp)),
            "policies": self.targeting.key(dp),
        }

    def proxy(self, dp: Dataplane) -> ProxyResources:
        node_id = dp.node_id
        hit = self._inputs(dp)
        own, selection, collisions, policies = hit.own, hit.selection, hit.collisions, hit.policies
        tp = dp.networking.transparent_proxying
        if tp is None or not dp.transparent:  # explicit outbounds only (Kuma's resolveVIPOutbounds)
            explicit = self._bundle(("explicit", selection, collisions, policies), dp, self.outbounds.explicit)
            return ProxyResources(node_id, own, explicit)
        legacy_key = ("legacy", tuple(sorted(set(tp.reachable_services))), collisions, policies)
        legacy = self._bundle(legacy_key, dp, self.outbounds.select_legacy)
        shared_key = ("resources", (selection, legacy_key[1]), collisions, policies)
        shared = self._bundle(
            shared_key, dp, self.outbounds.select_resources, frozenset(c.name for c in legacy.clusters)
        )
        return ProxyResources(node_id, own, shared, legacy, self._dns_set(dp, legacy_key, shared_key, collisions))

    def _dns_set(self, dp: Dataplane, legacy_key: BundleKey, shared_key: BundleKey, collisions: Any) -> ResourceSet:
        """The proxy's DNS listener. Its names are those of its VIP outbounds (Kuma's ``proxy.Outbounds`` from
        ``resolveVIPOutbounds``: reachable, minus overlaps with its own inbounds), so the table depends on the
        outbound selection, the port and the IP family only."""
        port = self._dns_ports.get(dp.node_id, 0)
        if not port or not tp_enabled(dp):
            return EMPTY
        key = (legacy_key, shared_key, port, ipv6_enabled(dp))
        rs = self._dns.get(key)
        if rs is None:
            selected = self.outbounds.select_legacy(dp) + self.outbounds.select_resources(dp)
            addresses = {ob.address for ob in selected if (ob.address, ob.port) not in collisions}
            listener = dns_listener(dp, port, self.vip_domains, addresses)
            if listener is None:
                return EMPTY
            hit = self._dns_sets.get(id(listener)) or self._old_dns_sets.get(id(listener))
            if hit is None or hit[0] is not listener:
                hit = (listener, ResourceSet(listeners=(listener,)))
            self._dns_sets[id(listener)] = hit
            rs = self._dns[key] = hit[1]
        return rs


def _same_set(a: ResourceSet, b: ResourceSet) -> bool:
    return all(same_items(getattr(a, f), getattr(b, f)) for f in ("clusters", "endpoints", "listeners", "routes"))


def translate(catalog: Catalog) -> dict[str, ProxyResources]:
    """Every proxy of every mesh, by node id. Meshes never see each other's destinations."""
    out: dict[str, ProxyResources] = {}
    for mesh in sorted(catalog.meshes):
        view = catalog.meshes[mesh]
        translator = MeshTranslator(view, catalog)
        for dp in view.dataplanes:
            out[dp.node_id] = translator.proxy(dp)
    return out
