"""Hand-made Envoy resources and Snapshots for server tests (independent of the translators)."""

from __future__ import annotations

import warnings
from datetime import timedelta

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Entry, Snapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster, ClusterDiscoveryType, ClusterEdsClusterConfig
    from envoy_data_plane.envoy.config.core.v3 import (
        Address,
        AggregatedConfigSource,
        ApiVersion,
        ConfigSource,
        SocketAddress,
    )
    from envoy_data_plane.envoy.config.endpoint.v3 import (
        ClusterLoadAssignment,
        Endpoint,
        LbEndpoint,
        LocalityLbEndpoints,
    )
    from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener
    from envoy_data_plane.envoy.config.route.v3 import Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost
    from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
    from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
        HttpConnectionManager,
        HttpFilter,
        Rds,
    )
    from envoy_data_plane.google.protobuf import Any

    from meshxds.codec.encode import encode_message


def _ads() -> ConfigSource:
    return ConfigSource(ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3)


def _address(host: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=host, port_value=port))


def _any(type_url: str, message: object) -> Any:
    return Any(type_url=type_url, value=encode_message(message))


def cluster(name: str, timeout: float = 1.0, service_name: str = "") -> Entry:
    """An EDS cluster over ADS. ``timeout=0`` makes Envoy reject it (connect_timeout must be > 0)."""
    msg = Cluster(
        name=name,
        type=ClusterDiscoveryType.EDS,
        connect_timeout=timedelta(seconds=timeout),
        eds_cluster_config=ClusterEdsClusterConfig(eds_config=_ads(), service_name=service_name),
    )
    return Entry.of(CLUSTER, name, msg)


def cla(name: str, *endpoints: tuple[str, int]) -> Entry:
    lbs = [LbEndpoint(endpoint=Endpoint(address=_address(h, p))) for h, p in endpoints]
    msg = ClusterLoadAssignment(cluster_name=name, endpoints=[LocalityLbEndpoints(lb_endpoints=lbs)])
    return Entry.of(ENDPOINT, name, msg)


def route(name: str, cluster_name: str) -> Entry:
    msg = RouteConfiguration(
        name=name,
        virtual_hosts=[
            VirtualHost(
                name=name,
                domains=["*"],
                routes=[Route(match=RouteMatch(prefix="/"), route=RouteAction(cluster=cluster_name))],
            )
        ],
    )
    return Entry.of(ROUTE, name, msg)


def http_listener(name: str, host: str, port: int, cluster_name: str = "", rds: str = "") -> Entry:
    """An HTTP listener routing everything to ``cluster_name`` (inline route) or via RDS ``rds``."""
    router = HttpFilter(name="envoy.filters.http.router", typed_config=_any(ROUTER_URL, Router()))
    if rds:
        hcm = HttpConnectionManager(stat_prefix=name, rds=Rds(config_source=_ads(), route_config_name=rds),
                                    http_filters=[router])  # fmt: skip
    else:
        inline = route(f"{name}-route", cluster_name).message
        hcm = HttpConnectionManager(stat_prefix=name, route_config=inline, http_filters=[router])
    msg = Listener(
        name=name,
        address=_address(host, port),
        filter_chains=[FilterChain(filters=[Filter(name="envoy.filters.network.http_connection_manager",
                                                   typed_config=_any(HCM_URL, hcm))])],
    )  # fmt: skip
    return Entry.of(LISTENER, name, msg)


ROUTER_URL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HCM_URL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def snapshot(node_id: str, *entries: Entry) -> Snapshot:
    return Snapshot.of(node_id, entries)


def replace(snap: Snapshot, *entries: Entry, drop: tuple[tuple[str, str], ...] = ()) -> Snapshot:
    """``snap`` with ``entries`` added or replaced (by type and name) and ``drop`` (type, name) removed."""
    keep = {(e.type_url, e.name): e for t in snap.resources.values() for e in t.values()}
    for key in drop:
        keep.pop(key, None)
    keep.update({(e.type_url, e.name): e for e in entries})
    return Snapshot.of(snap.node_id, keep.values())


UPSTREAM = ("127.0.0.1", 8080)


def two_clusters(node_id: str, *extra: Entry, timeout: float = 1.0) -> Snapshot:
    """The protocol tests' base snapshot: EDS clusters a and b with CLAs, listener "out" → a."""
    return snapshot(
        node_id,
        cluster("a", timeout),
        cla("a", UPSTREAM),
        cluster("b"),
        cla("b", UPSTREAM),
        http_listener("out", "127.0.0.1", 10001, "a"),
        *extra,
    )
