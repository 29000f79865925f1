"""The envoy-data-plane messages the translators build, imported in one place, plus small helpers.

Keeping the long generated module paths here lets every other translator module read like the
Envoy docs (``Cluster``, ``Listener``, ``TcpProxy``) and makes the set of message types we emit
easy to audit (the fast encoder must handle exactly these).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.cluster.v3 import (
        CircuitBreakers,
        CircuitBreakersThresholds,
        Cluster,
        ClusterDiscoveryType,
        ClusterEdsClusterConfig,
        ClusterLbPolicy,
    )
    from envoy_data_plane.envoy.config.core.v3 import (
        Address,
        AggregatedConfigSource,
        ApiVersion,
        BindConfig,
        CidrRange,
        ConfigSource,
        HealthCheck,
        HealthCheckHttpHealthCheck,
        HealthCheckTcpHealthCheck,
        Http1ProtocolOptions,
        Http2ProtocolOptions,
        HttpProtocolOptions,
        Locality,
        Metadata,
        SocketAddress,
        SocketAddressProtocol,
        TrafficDirection,
    )
    from envoy_data_plane.envoy.config.endpoint.v3 import (
        ClusterLoadAssignment,
        Endpoint,
        LbEndpoint,
        LocalityLbEndpoints,
    )
    from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener, ListenerFilter
    from envoy_data_plane.envoy.config.route.v3 import (
        Route,
        RouteAction,
        RouteConfiguration,
        RouteMatch,
        VirtualHost,
    )
    from envoy_data_plane.envoy.data.dns.v3 import (
        DnsTable,
        DnsTableAddressList,
        DnsTableDnsEndpoint,
        DnsTableDnsVirtualDomain,
    )
    from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
    from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
        HttpConnectionManager,
        HttpConnectionManagerForwardClientCertDetails,
        HttpConnectionManagerInternalAddressConfig,
        HttpConnectionManagerSetCurrentClientCertDetails,
        HttpFilter,
        Rds,
    )
    from envoy_data_plane.envoy.extensions.filters.network.tcp_proxy.v3 import TcpProxy
    from envoy_data_plane.envoy.extensions.filters.udp.dns_filter.v3 import (
        DnsFilterConfig,
        DnsFilterConfigServerContextConfig,
    )
    from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
        HttpProtocolOptions as UpstreamHttpProtocolOptions,
    )
    from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
        HttpProtocolOptionsExplicitHttpConfig,
    )
    from envoy_data_plane.envoy.service.health.v3 import (
        ClusterHealthCheck,
        HealthCheckSpecifier,
        LocalityEndpoints,
    )
    from envoy_data_plane.google.protobuf import Any, Struct, Value

from meshxds.codec import construct
from meshxds.codec.encode import pack

if not TYPE_CHECKING:
    construct.install(globals())  # each message class name builds without pydantic validation (codec/construct.py)

__all__ = [
    "Address",
    "AggregatedConfigSource",
    "Any",
    "ApiVersion",
    "BindConfig",
    "CidrRange",
    "CircuitBreakers",
    "CircuitBreakersThresholds",
    "Cluster",
    "ClusterDiscoveryType",
    "ClusterEdsClusterConfig",
    "ClusterHealthCheck",
    "ClusterLbPolicy",
    "ClusterLoadAssignment",
    "ConfigSource",
    "DnsFilterConfig",
    "DnsFilterConfigServerContextConfig",
    "DnsTable",
    "DnsTableAddressList",
    "DnsTableDnsEndpoint",
    "DnsTableDnsVirtualDomain",
    "Endpoint",
    "Filter",
    "FilterChain",
    "HealthCheck",
    "HealthCheckHttpHealthCheck",
    "HealthCheckSpecifier",
    "HealthCheckTcpHealthCheck",
    "Http1ProtocolOptions",
    "Http2ProtocolOptions",
    "HttpConnectionManager",
    "HttpConnectionManagerForwardClientCertDetails",
    "HttpConnectionManagerInternalAddressConfig",
    "HttpConnectionManagerSetCurrentClientCertDetails",
    "HttpFilter",
    "HttpProtocolOptions",
    "HttpProtocolOptionsExplicitHttpConfig",
    "LbEndpoint",
    "Listener",
    "ListenerFilter",
    "Locality",
    "LocalityEndpoints",
    "LocalityLbEndpoints",
    "Metadata",
    "Rds",
    "Route",
    "RouteAction",
    "RouteConfiguration",
    "RouteMatch",
    "Router",
    "SocketAddress",
    "SocketAddressProtocol",
    "Struct",
    "TcpProxy",
    "TrafficDirection",
    "UpstreamHttpProtocolOptions",
    "Value",
    "VirtualHost",
    "pack",
]


def struct(values: Mapping[str, str]) -> Struct:
    """A Struct with keys sorted: map fields encode in insertion order, and versions hash the bytes.

    Equal tag sets (every endpoint of a service, every Dataplane's computed labels) share one object,
    and shared objects are encoded once. Built as ``Struct.from_dict`` builds a map of strings.
    """
    return _struct(tuple(sorted(values.items())))


@lru_cache(maxsize=8192)
def _struct(items: tuple[tuple[str, str], ...]) -> Struct:
    return Struct(fields={key: _string_value(value) for key, value in items})


@lru_cache(maxsize=8192)
def _string_value(value: str) -> Value:
    return Value(string_value=value)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# Constructors below are cached: messages are never mutated once built, so sub-messages repeated across
# resources are built once, shared, and (by identity) encoded once.


@cache
def ads() -> ConfigSource:
    """Kuma's config source for EDS/RDS: the ADS stream, API v3."""
    return ConfigSource(ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3)


@lru_cache(maxsize=65536)
def socket_address(address: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=address, port_value=port))
