"""Mesh ``networking.outbound.passthrough``: the transparent proxy's catch-all outbound, as Kuma 2.14 builds it
(``pkg/xds/generator/transparent_proxy_generator.go``).

A transparent-proxy Dataplane gets the listener ``outbound:passthrough:ipv4`` on ``0.0.0.0:<redirectPortOutbound>``
(and ``…:ipv6`` on ``[::]`` unless the Dataplane is IPv4-only): ``useOriginalDst`` hands a redirected connection to
the outbound listener of its original destination, and what matches none goes to the tcp_proxy here. Its cluster
of the same name (ORIGINAL_DST, CLUSTER_PROVIDED) exists only while the Mesh allows passthrough (the default); with
``passthrough: false`` the listener stays and points at no cluster, so Envoy closes such connections, which is how
Kuma keeps traffic to non-mesh destinations from leaving the mesh.
"""

from __future__ import annotations

from functools import cache

from meshxds.resources.model import TransparentProxying
from meshxds.translators import protos as pb
from meshxds.translators.clusters import CONNECT_TIMEOUT_S, circuit_breakers
from meshxds.translators.names import stat_name

DEFAULT_OUTBOUND_PORT = 15001  # Kuma's default redirect port for outbound traffic
FAMILIES = (("ipv4", "0.0.0.0"), ("ipv6", "::"))
TCP_PROXY = "envoy.filters.network.tcp_proxy"


def passthrough_name(family: str) -> str:
    return f"outbound:passthrough:{family}"


def families(tp: TransparentProxying) -> tuple[tuple[str, str], ...]:
    """IPv4 always; IPv6 too unless the Dataplane's ``ipFamilyMode`` is IPv4-only."""
    return FAMILIES[:1] if (tp.ip_family_mode or "").lower() == "ipv4" else FAMILIES


@cache
def passthrough_listener(family: str, address: str, port: int) -> pb.Listener:
    name = passthrough_name(family)
    proxy = pb.TcpProxy(stat_prefix=stat_name(name), cluster=name)
    return pb.Listener(
        name=name,
        address=pb.socket_address(address, port),
        filter_chains=[pb.FilterChain(filters=[pb.Filter(name=TCP_PROXY, typed_config=pb.pack(proxy))])],
        use_original_dst=True,
        traffic_direction=pb.TrafficDirection.OUTBOUND,
        # Not bound, unlike Kuma's: without iptables the sidecars share one host, and a wildcard listener on the
        # redirect port would take connections meant for the redirect stand-in (or another sidecar).
        bind_to_port=False,
    )


@cache
def passthrough_cluster(family: str) -> pb.Cluster:
    name = passthrough_name(family)
    return pb.Cluster(
        name=name,
        alt_stat_name=stat_name(name),
        type=pb.ClusterDiscoveryType.ORIGINAL_DST,
        lb_policy=pb.ClusterLbPolicy.CLUSTER_PROVIDED,
        connect_timeout=pb.seconds(CONNECT_TIMEOUT_S),
        circuit_breakers=circuit_breakers(),
    )


def passthrough(tp: TransparentProxying, allowed: bool) -> tuple[tuple[pb.Listener, ...], tuple[pb.Cluster, ...]]:
    """(listeners, clusters) for one transparent-proxy Dataplane; clusters only when the Mesh allows passthrough."""
    port = tp.redirect_port_outbound or DEFAULT_OUTBOUND_PORT
    fams = families(tp)
    listeners = tuple(passthrough_listener(f, a, port) for f, a in fams)
    return listeners, tuple(passthrough_cluster(f) for f, _ in fams) if allowed else ()
