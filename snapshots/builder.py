"""Catalog → one checked ``Snapshot`` per proxy, each distinct message encoded exactly once.

The translators hand every proxy the very same message objects for shared resources, so an
``Entry`` cache keyed by object identity turns "encode per proxy" into "encode per resource".
Before a snapshot can be served it must be self-consistent: Envoy would otherwise sit warming
(an EDS cluster without its CLA) or route into nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from resources.catalog import Catalog
from snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, SHORT_NAMES, Entry, Snapshot
from translators import ProxyResources, translate
from xds import wire

TCP_PROXY_URL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HCM_URL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
EDS = 3  # Cluster.DiscoveryType.EDS


class SnapshotError(ValueError):
    """A translated snapshot that must not be served; the message names node and resource."""


def snapshots_for(catalog: Catalog) -> dict[str, Snapshot]:
    """Translate and encode every proxy of ``catalog``; raises ``SnapshotError`` on an inconsistent one."""
    return build(translate(catalog))


def build(resources: Mapping[str, ProxyResources]) -> dict[str, Snapshot]:
    cache = EntryCache()
    out: dict[str, Snapshot] = {}
    for node_id, res in resources.items():
        entries = [
            *(cache.get(CLUSTER, c.name, c) for c in res.clusters),
            *(cache.get(ENDPOINT, e.cluster_name, e) for e in res.endpoints),
            *(cache.get(LISTENER, lis.name, lis) for lis in res.listeners),
            *(cache.get(ROUTE, r.name, r) for r in res.routes),
        ]
        check_duplicates(node_id, entries)
        snapshot = Snapshot.of(node_id, entries)
        check(snapshot, cache)
        out[node_id] = snapshot
    return out


class EntryCache:
    """One Entry per message object within a build (the Entry keeps the message alive, so ids stay unique)."""

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        self._refs: dict[int, References] = {}

    def get(self, type_url: str, name: str, message: Any) -> Entry:
        entry = self._entries.get(id(message))
        if entry is None:
            entry = self._entries[id(message)] = Entry.of(type_url, name, message)
        return entry

    def references(self, entry: Entry) -> References:
        refs = self._refs.get(id(entry))
        if refs is None:
            refs = self._refs[id(entry)] = references(entry)
        return refs


def check_duplicates(node_id: str, entries: Iterable[Entry]) -> None:
    seen: set[tuple[str, str]] = set()
    for e in entries:
        if (e.type_url, e.name) in seen:
            raise SnapshotError(f"{node_id}: two different {SHORT_NAMES[e.type_url]} named {e.name!r}")
        seen.add((e.type_url, e.name))


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class References:
    """What one resource needs from the rest of its snapshot."""

    endpoints: tuple[str, ...] = ()  # an EDS cluster's CLA
    clusters: tuple[str, ...] = ()  # tcp_proxy / route targets
    routes: tuple[str, ...] = ()  # RDS names


def check(snapshot: Snapshot, cache: EntryCache) -> None:
    """Every EDS cluster has its CLA, every referenced cluster and RDS route exists."""
    have = {t: snapshot.get(t) for t in (CLUSTER, ENDPOINT, ROUTE)}
    for type_url in (CLUSTER, LISTENER, ROUTE):
        for name, entry in snapshot.get(type_url).items():
            refs = cache.references(entry)
            for wanted, target, what in (
                (refs.endpoints, ENDPOINT, "ClusterLoadAssignment"),
                (refs.clusters, CLUSTER, "cluster"),
                (refs.routes, ROUTE, "RouteConfiguration"),
            ):
                for ref in wanted:
                    if ref not in have[target]:
                        kind = SHORT_NAMES[type_url][:-1]
                        node = snapshot.node_id
                        raise SnapshotError(f"{node}: {kind} {name!r} needs {what} {ref!r}, which is missing")


def references(entry: Entry) -> References:
    if entry.type_url == CLUSTER:
        c = entry.message
        if c.type is not None and int(c.type) == EDS:
            service = c.eds_cluster_config.service_name if c.eds_cluster_config else ""
            return References(endpoints=(service or c.name,))
        return References()
    if entry.type_url == LISTENER:
        return listener_references(entry.value)
    if entry.type_url == ROUTE:
        return References(clusters=tuple(route_config_clusters(entry.value)))
    return References()


# Wire-level reads: typed_config holds encoded bytes, and decoding them with betterproto2 costs
# milliseconds, so we read the few fields we need straight from the encoded message.


def fields(data: bytes, number: int) -> list[bytes]:
    """The payloads of length-delimited field ``number`` in one encoded message."""
    return [v for n, v in wire.fields(data) if n == number and isinstance(v, bytes)]


def _strings(data: bytes, *path: int) -> list[str]:
    """Follow nested message fields ``path`` (the last one a string) and collect every value."""
    level = [data]
    for number in path:
        level = [child for msg in level for child in fields(msg, number)]
    return [v.decode() for v in level]


def listener_references(listener: bytes) -> References:
    """Clusters of tcp_proxy filters and route names of RDS-backed HTTP connection managers (and inline routes)."""
    clusters: list[str] = []
    routes: list[str] = []
    for chain in fields(listener, 3):  # Listener.filter_chains
        for flt in fields(chain, 3):  # FilterChain.filters
            for any_msg in fields(flt, 4):  # Filter.typed_config
                type_url = b"".join(fields(any_msg, 1)).decode()
                value = b"".join(fields(any_msg, 2))
                if type_url == TCP_PROXY_URL:
                    clusters += _strings(value, 2)  # TcpProxy.cluster
                elif type_url == HCM_URL:
                    routes += _strings(value, 3, 2)  # rds.route_config_name
                    for inline in fields(value, 4):  # route_config
                        clusters += route_config_clusters(inline)
    return References(clusters=tuple(clusters), routes=tuple(routes))


def route_config_clusters(route_config: bytes) -> list[str]:
    # RouteConfiguration.virtual_hosts(2) → VirtualHost.routes(3) → Route.route(2) → RouteAction.cluster(1)
    return _strings(route_config, 2, 3, 2, 1)
