"""The translators' entry point: a Catalog in, every proxy's Envoy resources out.

Work is shared at three levels so cost grows with services + proxies, not their product:
per mesh (endpoint map, destinations, one Cluster/CLA/Listener/RouteConfiguration object per
destination), per outbound selection (proxies with the same reachable settings share one tuple of
outbound resources), and per proxy only its inbounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from resources.catalog import Catalog, MeshView
from resources.model import Dataplane
from translators import protos as pb
from translators.clusters import local_cluster, outbound_cluster
from translators.dataplanes import InboundInterface, exposed_inbounds, inbound_protocol, interface, is_http
from translators.endpoints import ClaBuilder, build_endpoint_map, subset
from translators.listeners import inbound_chain, inbound_listener, outbound_listener, route_configuration
from translators.names import local_cluster_name
from translators.outbounds import LEGACY, Destination, MeshOutbounds, Outbound


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """A group of resources that travel together (a proxy's own, or an outbound selection's)."""

    clusters: tuple[pb.Cluster, ...] = ()
    endpoints: tuple[pb.ClusterLoadAssignment, ...] = ()
    listeners: tuple[pb.Listener, ...] = ()
    routes: tuple[pb.RouteConfiguration, ...] = ()


@dataclass(frozen=True, slots=True)
class ProxyResources:
    """One proxy's resources: ``own`` (its inbounds) plus ``shared`` (its outbounds).

    ``shared`` is the very same ResourceSet object for every proxy of the mesh with the same
    outbound selection, so consumers (the snapshot builder) can do per-selection work once.
    """

    node_id: str
    own: ResourceSet
    shared: ResourceSet

    @property
    def clusters(self) -> tuple[pb.Cluster, ...]:
        return self.own.clusters + self.shared.clusters

    @property
    def endpoints(self) -> tuple[pb.ClusterLoadAssignment, ...]:
        return self.own.endpoints + self.shared.endpoints

    @property
    def listeners(self) -> tuple[pb.Listener, ...]:
        return self.own.listeners + self.shared.listeners

    @property
    def routes(self) -> tuple[pb.RouteConfiguration, ...]:
        return self.own.routes + self.shared.routes


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """Drop repeats of the same object (not of equal names: those are real conflicts, caught later)."""
    seen: set[int] = set()
    out = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return tuple(out)


K = TypeVar("K")
V = TypeVar("V")


def _memo(store: dict[K, V], key: K, make: Callable[[], V]) -> V:
    value = store.get(key)
    if value is None:
        value = store[key] = make()
    return value


class MeshTranslator:
    """Translates the proxies of one mesh, memoising every shared resource.

    Memo keys use ``id()`` of Destinations, which ``MeshOutbounds`` keeps alive for the whole build.
    """

    def __init__(self, view: MeshView, catalog: Catalog) -> None:
        self.view = view
        self.endpoint_map = build_endpoint_map(view, catalog)
        self.outbounds = MeshOutbounds(view, self.endpoint_map)
        self._cla = ClaBuilder()
        self._clusters: dict[int, tuple[pb.Cluster, pb.ClusterLoadAssignment]] = {}
        self._routes: dict[int, pb.RouteConfiguration] = {}
        self._listeners: dict[tuple[str, int, bool, int], pb.Listener] = {}
        self._locals: dict[tuple[str, str, int, str, bool], pb.Cluster] = {}
        self._bundles: dict[tuple[str, frozenset[tuple[str, int]]], ResourceSet] = {}
        self._chains: dict[tuple[str, str, str], pb.FilterChain] = {}

    def _cluster(self, dest: Destination) -> tuple[pb.Cluster, pb.ClusterLoadAssignment]:
        def make() -> tuple[pb.Cluster, pb.ClusterLoadAssignment]:
            endpoints = self.endpoint_map.get(dest.service, [])
            if dest.kind == LEGACY:
                endpoints = subset(endpoints, dest.tags)
            return outbound_cluster(dest), self._cla.build(dest.cluster, endpoints)

        return _memo(self._clusters, id(dest), make)

    def _route(self, outbound: Outbound) -> pb.RouteConfiguration:
        return _memo(self._routes, id(outbound.destination), lambda: route_configuration(outbound))

    def _listener(self, outbound: Outbound, transparent: bool) -> pb.Listener:
        key = (outbound.address, outbound.port, transparent, id(outbound.destination))
        return _memo(self._listeners, key, lambda: outbound_listener(outbound, transparent))

    def _bundle(self, dp: Dataplane) -> ResourceSet:
        collisions = frozenset(self.outbounds.own_inbound_collisions(dp))
        key = (self.outbounds.selection_key(dp), collisions)

        def make() -> ResourceSet:
            selected = [ob for ob in self.outbounds.select(dp) if (ob.address, ob.port) not in collisions]
            pairs = [self._cluster(ob.destination) for ob in selected]
            return ResourceSet(
                clusters=_unique(c for c, _ in pairs),
                endpoints=_unique(e for _, e in pairs),
                listeners=tuple(self._listener(ob, dp.transparent) for ob in selected),
                routes=_unique(self._route(ob) for ob in selected if is_http(ob.destination.protocol)),
            )

        return _memo(self._bundles, key, make)

    def _local_cluster(self, name: str, iface: InboundInterface, protocol: str, transparent: bool) -> pb.Cluster:
        ip, port = iface.workload_ip, iface.workload_port
        return _memo(self._locals, (name, ip, port, protocol, transparent),
                     lambda: local_cluster(name, ip, port, protocol, transparent))  # fmt: skip

    def _inbound_chain(self, service: str, protocol: str, cluster: str) -> pb.FilterChain:
        return _memo(self._chains, (service, protocol, cluster), lambda: inbound_chain(service, protocol, cluster))

    def proxy(self, dp: Dataplane) -> ProxyResources:
        transparent = dp.transparent
        clusters: dict[str, pb.Cluster] = {}
        listeners: list[pb.Listener] = []
        for inbound in exposed_inbounds(dp):
            iface = interface(dp, inbound)
            protocol = inbound_protocol(inbound)
            name = local_cluster_name(iface.workload_port)
            if name not in clusters:  # inbounds sharing a servicePort share the app cluster: first wins
                clusters[name] = self._local_cluster(name, iface, protocol, transparent)
            chain = self._inbound_chain(inbound.service or "", protocol, name)
            listeners.append(inbound_listener(inbound, iface, chain, transparent))
        own = ResourceSet(clusters=tuple(clusters.values()), listeners=tuple(listeners))
        return ProxyResources(dp.node_id, own, self._bundle(dp))


def translate(catalog: Catalog) -> dict[str, ProxyResources]:
    """Every proxy of every mesh, by node id. Meshes never see each other's destinations."""
    out: dict[str, ProxyResources] = {}
    for mesh in sorted(catalog.meshes):
        view = catalog.meshes[mesh]
        translator = MeshTranslator(view, catalog)
        for dp in view.dataplanes:
            out[dp.node_id] = translator.proxy(dp)
    return out
