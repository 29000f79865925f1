"""Inbound and outbound Listeners, shaped as in Kuma's golden 06.

Outbound: tcp_proxy for tcp/kafka/unknown (or a MeshTCPRoute's split), an HTTP connection manager for
http/http2/grpc whose routes come over RDS (Kuma inlines them; ``routes.py`` builds them as
RouteConfiguration resources so they are versioned and shared). Inbound: the same split, forwarding to
the local app cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from meshxds.resources.model import MESH_LABEL, Inbound
from meshxds.resources.mtls import Mode
from meshxds.resources.mtp import Rule
from meshxds.translators import protos as pb
from meshxds.translators.dataplanes import InboundInterface, is_http
from meshxds.translators.names import inbound_listener_name, outbound_listener_name, stat_name
from meshxds.translators.outbounds import LEGACY, Outbound
from meshxds.translators.rbac import http_rbac, network_rbac
from meshxds.translators.tls import permissive_chains, strict_chain, tls_inspector

FORWARD_CERT = pb.HttpConnectionManagerForwardClientCertDetails

TCP_IDLE_TIMEOUT_S = 3600
ROUTE_TIMEOUT_S = 15
ROUTE_IDLE_TIMEOUT_S = 1800
STREAM_IDLE_TIMEOUT_S = 3600
UNIFIED_NAME_TAG = "kuma.io/unified-name"
# Kuma's internal address ranges for the HCM (RFC 1918 + loopback).
INTERNAL_CIDRS = (("10.0.0.0", 8), ("192.168.0.0", 16), ("172.16.0.0", 12), ("127.0.0.1", 32))
TCP_PROXY = "envoy.filters.network.tcp_proxy"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"


def _tags_metadata(tags: Mapping[str, str]) -> pb.Metadata:
    return _sorted_tags_metadata(tuple(sorted(tags.items())))


@lru_cache(maxsize=65536)
def _sorted_tags_metadata(tags: tuple[tuple[str, str], ...]) -> pb.Metadata:
    """Shared by every listener with the same tags (the inbounds of one service)."""
    return pb.Metadata(filter_metadata={"io.kuma.tags": pb.struct(dict(tags))})


@cache
def _router() -> pb.HttpFilter:
    return pb.HttpFilter(name=ROUTER, typed_config=pb.pack(pb.Router()))


@cache
def _no_idle_timeout() -> pb.HttpProtocolOptions:
    return pb.HttpProtocolOptions(idle_timeout=pb.seconds(0))


@cache
def _internal_addresses() -> pb.HttpConnectionManagerInternalAddressConfig:
    ranges = [pb.CidrRange(address_prefix=a, prefix_len=n) for a, n in INTERNAL_CIDRS]
    return pb.HttpConnectionManagerInternalAddressConfig(cidr_ranges=ranges)


@lru_cache(maxsize=65536)
def _tcp_proxy(stat_prefix: str, cluster: str) -> pb.Filter:
    """Shared by an inbound's plain and mTLS chains (the latter adds RBAC in front), on every proxy of a service."""
    config = pb.TcpProxy(stat_prefix=stat_prefix, cluster=cluster, idle_timeout=pb.seconds(TCP_IDLE_TIMEOUT_S))
    return pb.Filter(name=TCP_PROXY, typed_config=pb.pack(config))


def _route(cluster: str) -> pb.Route:
    action = pb.RouteAction(
        cluster=cluster, timeout=pb.seconds(ROUTE_TIMEOUT_S), idle_timeout=pb.seconds(ROUTE_IDLE_TIMEOUT_S)
    )
    return pb.Route(match=pb.RouteMatch(prefix="/"), route=action)


def outbound_listener(outbound: Outbound, transparent: bool, tcp: Mapping[str, Any] | None = None) -> pb.Listener:
    """``outbound:<address>:<port>``; not bound under transparent proxying (iptables delivers to it).

    ``tcp`` (from a MeshTCPRoute or the policies) makes it a tcp_proxy with those fields.
    """
    dest = outbound.destination
    if tcp is not None:
        config = pb.TcpProxy(stat_prefix=stat_name(dest.cluster), **tcp)
        chain = pb.FilterChain(filters=[pb.Filter(name=TCP_PROXY, typed_config=pb.pack(config))])
    elif is_http(dest.protocol):
        hcm = pb.HttpConnectionManager(
            stat_prefix=stat_name(dest.cluster),
            rds=pb.Rds(config_source=pb.ads(), route_config_name=dest.route_name),
            http_filters=[_router()],
            common_http_protocol_options=_no_idle_timeout(),
            request_headers_timeout=pb.seconds(0),
            internal_address_config=_internal_addresses(),
            normalize_path=True,
        )
        chain = pb.FilterChain(filters=[pb.Filter(name=HCM, typed_config=pb.pack(hcm))])
    else:
        chain = pb.FilterChain(filters=[_tcp_proxy(stat_name(dest.cluster), dest.cluster)])
    if dest.kind == LEGACY:
        tags = {k: v for k, v in dest.tags.items() if k != MESH_LABEL}
    else:
        tags = {UNIFIED_NAME_TAG: dest.kri}
    name = outbound_listener_name(outbound.address, outbound.port)
    return pb.Listener(
        name=name,
        address=pb.socket_address(outbound.address, outbound.port),
        filter_chains=[chain],
        metadata=_tags_metadata(tags),
        traffic_direction=pb.TrafficDirection.OUTBOUND,
        bind_to_port=False if transparent else None,
    )


def inbound_chain(
    service: str, protocol: str, cluster: str, named: bool = True, security: InboundSecurity | None = None
) -> pb.FilterChain:
    """The inbound filter chain: independent of the address, so proxies of one service share it.

    ``named`` is False for an inbound without ``kuma.io/service``: ``service`` is then the listener's
    name, which names the route configuration and virtual host (``FilterChainBuilder``, testdata 10).
    With ``security`` (mesh mTLS) the chain also authorizes (RBAC first, as Kuma's MeshTrafficPermission
    configurer puts it) and the HCM forwards the client's certificate URI (``SANITIZE_SET``).
    """
    if not is_http(protocol):
        filters = [_tcp_proxy(stat_name(cluster), cluster)]
        if security is not None:
            filters.insert(0, network_rbac(security.mesh, security.rules, security.stat_prefix))
        return pb.FilterChain(filters=filters)
    host = pb.VirtualHost(name=service, domains=["*"], routes=[_route(cluster)])
    route_config = pb.RouteConfiguration(
        name=f"inbound:{service}" if named else service,
        virtual_hosts=[host],
        request_headers_to_remove=["x-kuma-tags"],
        validate_clusters=False,
    )
    http_filters = [_router()]
    if security is not None:
        http_filters.insert(0, http_rbac(security.mesh, security.rules))
    hcm = pb.HttpConnectionManager(
        stat_prefix=stat_name(cluster),
        route_config=route_config,
        http_filters=http_filters,
        common_http_protocol_options=_no_idle_timeout(),
        stream_idle_timeout=pb.seconds(STREAM_IDLE_TIMEOUT_S),
        request_headers_timeout=pb.seconds(0),
        internal_address_config=_internal_addresses(),
        forward_client_cert_details=FORWARD_CERT.SANITIZE_SET if security is not None else FORWARD_CERT.SANITIZE,
        set_current_client_cert_details=_cert_uri() if security is not None else None,
    )
    return pb.FilterChain(filters=[pb.Filter(name=HCM, typed_config=pb.pack(hcm))])


@dataclass(frozen=True)
class InboundSecurity:
    """What mesh mTLS adds to one inbound: its mesh and mode, and its MeshTrafficPermission rules."""

    mesh: str
    mode: Mode
    rules: tuple[Rule, ...]
    stat_prefix: str  # the listener's stat name (Kuma's network RBAC stat prefix, plus ".")
    # It keys several memos per inbound: hash the rules once, not at every lookup.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.mesh, self.mode, self.rules, self.stat_prefix)))

    def __hash__(self) -> int:
        return self._hash


@cache
def _cert_uri() -> pb.HttpConnectionManagerSetCurrentClientCertDetails:
    return pb.HttpConnectionManagerSetCurrentClientCertDetails(uri=True)


def secure_chains(plain: pb.FilterChain, secured: pb.FilterChain, security: InboundSecurity) -> list[pb.FilterChain]:
    """STRICT: the secured chain behind mTLS; PERMISSIVE: Kuma's three chains (``tls.permissive_chains``)."""
    if security.mode == Mode.PERMISSIVE:
        return permissive_chains(plain, secured, security.mesh)
    return [strict_chain(secured, security.mesh)]


def inbound_unified_name(inbound: Inbound) -> str:
    """``naming.ContextualInboundName``: ``self_inbound_dp_<section>``, the tags of an inbound that has none."""
    return f"self_inbound_dp_{inbound.name or inbound.port}"


def inbound_listener(
    inbound: Inbound, iface: InboundInterface, chains: pb.FilterChain | list[pb.FilterChain], transparent: bool
) -> pb.Listener:
    """``inbound:<ip>:<port>`` forwarding to the app's local cluster; several chains (PERMISSIVE) add
    Kuma's TLS inspector."""
    chains = chains if isinstance(chains, list) else [chains]
    return pb.Listener(
        name=inbound_listener_name(iface.dataplane_ip, iface.dataplane_port),
        address=pb.socket_address(iface.dataplane_ip, iface.dataplane_port),
        filter_chains=chains,
        listener_filters=[tls_inspector()] if len(chains) > 1 else [],
        metadata=_tags_metadata(inbound.tags or {UNIFIED_NAME_TAG: inbound_unified_name(inbound)}),
        traffic_direction=pb.TrafficDirection.INBOUND,
        enable_reuse_port=True,
        bind_to_port=False if transparent else None,
    )
