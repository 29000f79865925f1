"""Realistic Envoy resources of every shape the translators emit, built directly.

Used by the encoder's equivalence tests and by the encode benchmark, so both
exercise the same field kinds: EDS clusters with Any-typed protocol options,
circuit breakers and Durations; load assignments with localities, priorities,
weights and Struct metadata; listeners with tcp_proxy and HttpConnectionManager
typed configs; route configurations with virtual hosts, routes and timeouts.
"""

from __future__ import annotations

import datetime
from typing import Any

from envoy_data_plane.envoy.config.cluster.v3 import (
    CircuitBreakers,
    CircuitBreakersThresholds,
    Cluster,
    ClusterDiscoveryType,
    ClusterEdsClusterConfig,
    ClusterLbPolicy,
    OutlierDetection,
)
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    AggregatedConfigSource,
    ApiVersion,
    ConfigSource,
    Http2ProtocolOptions,
    Locality,
    Metadata,
    RoutingPriority,
    SocketAddress,
    TrafficDirection,
)
from envoy_data_plane.envoy.config.endpoint.v3 import (
    ClusterLoadAssignment,
    ClusterLoadAssignmentPolicy,
    Endpoint,
    LbEndpoint,
    LocalityLbEndpoints,
)
from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener
from envoy_data_plane.envoy.config.route.v3 import (
    Route,
    RouteAction,
    RouteConfiguration,
    RouteMatch,
    VirtualHost,
    WeightedCluster,
    WeightedClusterClusterWeight,
)
from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManager,
    HttpConnectionManagerCodecType,
    HttpFilter,
    Rds,
)
from envoy_data_plane.envoy.extensions.filters.network.tcp_proxy.v3 import TcpProxy
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptions,
    HttpProtocolOptionsExplicitHttpConfig,
)
from envoy_data_plane.envoy.service.discovery.v3 import DeltaDiscoveryResponse, DiscoveryResponse, Resource
from envoy_data_plane.google.protobuf import Any as AnyMessage
from envoy_data_plane.google.protobuf import Struct

from meshxds.codec.encode import encode_message, pack
from meshxds.snapshots.snapshot import CLUSTER
from meshxds.translators.clusters import HTTP_OPTIONS_KEY


def _ads() -> ConfigSource:
    return ConfigSource(ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3)


def cluster(name: str, *, http2: bool = False, max_connections: int = 1024) -> Cluster:
    """An EDS cluster over ADS, as Kuma emits for a MeshService port."""
    options: dict[str, AnyMessage] = {}
    if http2:
        options[HTTP_OPTIONS_KEY] = pack(
            HttpProtocolOptions(
                explicit_http_config=HttpProtocolOptionsExplicitHttpConfig(
                    http2_protocol_options=Http2ProtocolOptions()
                )
            )
        )
    return Cluster(
        name=name,
        alt_stat_name=name.replace(".", "_"),
        type=ClusterDiscoveryType.EDS,
        eds_cluster_config=ClusterEdsClusterConfig(eds_config=_ads(), service_name=name),
        connect_timeout=datetime.timedelta(seconds=5),
        lb_policy=ClusterLbPolicy.ROUND_ROBIN,
        per_connection_buffer_limit_bytes=32768,
        circuit_breakers=CircuitBreakers(
            thresholds=[
                CircuitBreakersThresholds(
                    priority=RoutingPriority.DEFAULT,
                    max_connections=max_connections,
                    max_pending_requests=max_connections,
                    max_requests=max_connections,
                    max_retries=3,
                    track_remaining=True,
                )
            ]
        ),
        outlier_detection=OutlierDetection(
            consecutive_5xx=5, interval=datetime.timedelta(milliseconds=1500), enforcing_consecutive_5xx=0
        ),
        typed_extension_protocol_options=options,
        metadata=Metadata(filter_metadata={"io.kuma.tags": Struct.from_dict({"kuma.io/service": name})}),
    )


def load_assignment(
    name: str, endpoints: list[tuple[str, int]], *, zones: int = 1, metadata: bool = True
) -> ClusterLoadAssignment:
    """Endpoints spread over ``zones`` localities; remote zones at priority 1 with a lower weight."""
    by_zone: dict[int, list[LbEndpoint]] = {}
    for i, (host, port) in enumerate(endpoints):
        by_zone.setdefault(i % zones, []).append(
            LbEndpoint(
                endpoint=Endpoint(address=Address(socket_address=SocketAddress(address=host, port_value=port))),
                load_balancing_weight=1,
                metadata=Metadata(
                    filter_metadata={
                        "envoy.lb": Struct.from_dict({"kuma.io/zone": f"zone-{i % zones}", "team": "core"}),
                        "envoy.transport_socket_match": Struct.from_dict({"kuma.io/protocol": "http"}),
                    }
                )
                if metadata
                else None,
            )
        )
    return ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            LocalityLbEndpoints(
                locality=Locality(zone=f"zone-{zone}"),
                lb_endpoints=lbs,
                load_balancing_weight=100 if zone == 0 else 1,
                priority=0 if zone == 0 else 1,
            )
            for zone, lbs in sorted(by_zone.items())
        ],
        policy=ClusterLoadAssignmentPolicy(overprovisioning_factor=140),
    )


def tcp_listener(name: str, address: str, port: int, cluster_name: str) -> Listener:
    """An outbound TCP listener: tcp_proxy to one cluster."""
    proxy = TcpProxy(stat_prefix=cluster_name, cluster=cluster_name, idle_timeout=datetime.timedelta(hours=1))
    return Listener(
        name=name,
        address=Address(socket_address=SocketAddress(address=address, port_value=port)),
        traffic_direction=TrafficDirection.OUTBOUND,
        filter_chains=[FilterChain(filters=[Filter(name="envoy.filters.network.tcp_proxy", typed_config=pack(proxy))])],
        bind_to_port=False,
        metadata=Metadata(filter_metadata={"io.kuma.tags": Struct.from_dict({"kuma.io/service": cluster_name})}),
    )


def http_listener(name: str, address: str, port: int, route_config: str) -> Listener:
    """An outbound HTTP listener: HttpConnectionManager with RDS over ADS and the router filter."""
    hcm = HttpConnectionManager(
        codec_type=HttpConnectionManagerCodecType.AUTO,
        stat_prefix=route_config,
        rds=Rds(config_source=_ads(), route_config_name=route_config),
        http_filters=[HttpFilter(name="envoy.filters.http.router", typed_config=pack(Router()))],
        stream_idle_timeout=datetime.timedelta(0),
        normalize_path=True,
        use_remote_address=False,
    )
    return Listener(
        name=name,
        address=Address(socket_address=SocketAddress(address=address, port_value=port)),
        traffic_direction=TrafficDirection.OUTBOUND,
        filter_chains=[
            FilterChain(filters=[Filter(name="envoy.filters.network.http_connection_manager", typed_config=pack(hcm))])
        ],
        bind_to_port=False,
    )


def route_configuration(name: str, clusters: list[str], domains: list[str]) -> RouteConfiguration:
    """One virtual host: a weighted split over ``clusters`` plus an exact-path route with a timeout."""
    split = WeightedCluster(clusters=[WeightedClusterClusterWeight(name=c, weight=100) for c in clusters])
    return RouteConfiguration(
        name=name,
        validate_clusters=False,
        virtual_hosts=[
            VirtualHost(
                name=name,
                domains=domains,
                routes=[
                    Route(
                        name="health",
                        match=RouteMatch(path="/health", case_sensitive=False),
                        route=RouteAction(cluster=clusters[0], timeout=datetime.timedelta(seconds=15)),
                    ),
                    Route(
                        match=RouteMatch(prefix="/"),
                        route=RouteAction(
                            weighted_clusters=split,
                            timeout=datetime.timedelta(0),
                            idle_timeout=datetime.timedelta(seconds=3600),
                        ),
                    ),
                ],
            )
        ],
    )


def discovery_response(version: str, type_url: str, resources: list[Any], nonce: str) -> DiscoveryResponse:
    return DiscoveryResponse(
        version_info=version,
        resources=[AnyMessage(type_url=type_url, value=encode_message(r)) for r in resources],
        type_url=type_url,
        nonce=nonce,
    )


def delta_discovery_response(type_url: str, resources: dict[str, Any], removed: list[str]) -> DeltaDiscoveryResponse:
    return DeltaDiscoveryResponse(
        system_version_info="v1",
        resources=[
            Resource(
                name=name,
                version=f"v-{name}",
                resource=AnyMessage(type_url=type_url, value=encode_message(r)),
                ttl=datetime.timedelta(seconds=30),
                aliases=[name.upper()],
            )
            for name, r in resources.items()
        ],
        type_url=type_url,
        nonce="n1",
        removed_resources=removed,
    )


def every_kind() -> list[Any]:
    """One of each: what the equivalence tests and the encode benchmark run over."""
    endpoints = [(f"10.1.{i // 250}.{i % 250 + 1}", 8080) for i in range(6)]
    return [
        cluster("backend_svc_80"),
        cluster("web_svc_8080", http2=True),
        load_assignment("backend_svc_80", endpoints[:3]),
        load_assignment("web_svc_8080", endpoints, zones=2),
        tcp_listener("outbound:241.0.0.1:80", "241.0.0.1", 80, "backend_svc_80"),
        http_listener("outbound:241.0.0.2:8080", "241.0.0.2", 8080, "outbound:web_svc_8080"),
        route_configuration("outbound:web_svc_8080", ["web_svc_8080", "web-canary_svc_8080"], ["web", "web.svc"]),
        discovery_response("v1", CLUSTER, [cluster("a"), cluster("b", http2=True)], "nonce-1"),
        delta_discovery_response(CLUSTER, {"a": cluster("a")}, ["gone"]),
    ]
