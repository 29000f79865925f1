"""Envoy Clusters with Kuma's settings (spec §3.7, golden 06).

Outbound clusters are EDS over ADS with h2 to the peer sidecar (whatever the protocol: tcp_proxy
ignores it); MeshTimeout and MeshCircuitBreaker defaults (connect 5s, trackRemaining, HTTP idle
1h) are applied as Kuma does even without policies. With mesh mTLS, outbound clusters carry the upstream TLS socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from meshxds.translators import protos as pb
from meshxds.translators.dataplanes import is_http
from meshxds.translators.names import stat_name
from meshxds.translators.outbounds import Destination
from meshxds.translators.tls import upstream_tls

HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
CONNECT_TIMEOUT_S = 5
HTTP_IDLE_TIMEOUT_S = 3600
# Under transparent proxying Kuma binds connections to a non-loopback app here (metadata.go TransparentInPassThrough*).
INBOUND_SOURCE_ADDRESS = "127.0.0.6"
INBOUND_SOURCE_ADDRESS_V6 = "::6"
LOOPBACKS = ("127.0.0.1", "::1")


def _common_http() -> pb.HttpProtocolOptions:
    zero = pb.seconds(0)
    return pb.HttpProtocolOptions(
        idle_timeout=pb.seconds(HTTP_IDLE_TIMEOUT_S), max_connection_duration=zero, max_stream_duration=zero
    )


@cache
def protocol_options(http2: bool, http_defaults: bool) -> pb.Any:
    """The shared ``HttpProtocolOptions`` Any: h1 or h2 upstream, plus MeshTimeout's HTTP defaults for HTTP."""
    explicit = (
        pb.HttpProtocolOptionsExplicitHttpConfig(http2_protocol_options=pb.Http2ProtocolOptions())
        if http2
        else pb.HttpProtocolOptionsExplicitHttpConfig(http_protocol_options=pb.Http1ProtocolOptions())
    )
    opts = pb.UpstreamHttpProtocolOptions(
        common_http_protocol_options=_common_http() if http_defaults else None, explicit_http_config=explicit
    )
    return pb.pack(opts)


def _alt_stat_name(name: str) -> str:
    alt = stat_name(name)
    return alt if alt != name else ""


@cache
def circuit_breakers() -> pb.CircuitBreakers:
    return pb.CircuitBreakers(thresholds=[pb.CircuitBreakersThresholds(track_remaining=True)])


def outbound_cluster(dest: Destination, policies: Mapping[str, Any] | None = None, mtls_mesh: str = "") -> pb.Cluster:
    """An EDS cluster for one destination; its CLA has the same name. ``policies`` are the fields the
    destination's MeshTimeout/MeshCircuitBreaker/MeshHealthCheck/MeshLoadBalancingStrategy set. With
    ``mtls_mesh`` the upstream connection is Kuma mTLS (``client_side_mtls_configurer.go``): SNI, exact SAN,
    ALPN kuma."""
    fields: dict[str, Any] = {
        "connect_timeout": pb.seconds(CONNECT_TIMEOUT_S),
        "circuit_breakers": circuit_breakers(),
        "typed_extension_protocol_options": {HTTP_OPTIONS_KEY: protocol_options(True, is_http(dest.protocol))},
        **(policies or {}),
    }
    if mtls_mesh:
        fields["transport_socket"] = upstream_tls(mtls_mesh, dest.sni, dest.identities)
    return pb.Cluster(
        name=dest.cluster,
        alt_stat_name=_alt_stat_name(dest.cluster),
        type=pb.ClusterDiscoveryType.EDS,
        eds_cluster_config=pb.ClusterEdsClusterConfig(eds_config=pb.ads()),
        **fields,
    )


def local_cluster(name: str, address: str, port: int, protocol: str, transparent: bool) -> pb.Cluster:
    """The app behind an inbound (``localhost:<servicePort>``): STATIC, h1 for http, h2 for http2/grpc.

    ``inbound_proxy_generator.go``: the upstream bind address is set only for a transparent proxy whose
    app is not on 127.0.0.1/::1 (traffic from 127.0.0.6 skips the inbound redirect).
    """
    options = {HTTP_OPTIONS_KEY: protocol_options(protocol != "http", True)} if is_http(protocol) else {}
    return pb.Cluster(
        name=name,
        alt_stat_name=_alt_stat_name(name),
        type=pb.ClusterDiscoveryType.STATIC,
        connect_timeout=pb.seconds(CONNECT_TIMEOUT_S),
        load_assignment=pb.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                pb.LocalityLbEndpoints(
                    lb_endpoints=[pb.LbEndpoint(endpoint=pb.Endpoint(address=pb.socket_address(address, port)))]
                )
            ],
        ),
        circuit_breakers=circuit_breakers(),
        typed_extension_protocol_options=options,
        upstream_bind_config=app_bind(address, transparent),
    )


def app_bind(address: str, transparent: bool) -> pb.BindConfig | None:
    """The source address for connections to a local app (app cluster and HDS probe alike): 127.0.0.6 (::6)
    for a transparent proxy whose app is not on loopback, so the inbound redirect lets them through
    (``inbound_proxy_generator.go``, ``hds/tracker/healthcheck_generator.go``); none otherwise."""
    if not transparent or address in LOOPBACKS:
        return None
    source = INBOUND_SOURCE_ADDRESS_V6 if ":" in address else INBOUND_SOURCE_ADDRESS
    return pb.BindConfig(source_address=pb.socket_address(source, 0).socket_address)
