"""Envoy bootstrap pointing a sidecar at meshxds over ADS (SotW or Delta).

One function builds the dict; ``meshxds bootstrap`` prints it as YAML and the tests
and the demo start Envoy with it, so what users run is what is tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshxds.translators.clusters import HTTP_OPTIONS_KEY
from meshxds.xds.metrics_sink import sink_config


def bootstrap_config(
    node_id: str,
    ads_host: str = "127.0.0.1",
    ads_port: int = 18000,
    delta: bool = False,
    admin_address: str = "127.0.0.1",
    admin_port: int = 9901,
    dns_port: int = 0,
    stats_flush_interval: float | None = None,
    more_ads: Sequence[tuple[str, int]] = (),
    token: str | None = None,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """A complete bootstrap: node id ``<mesh>.<name>``, ADS over gRPC, CDS and LDS via ADS, HDS.

    ``more_ads`` adds control-plane replicas to the xds cluster: when the connected one goes away,
    Envoy's next ADS stream goes to another endpoint of the cluster.

    ``set_node_on_first_message_only`` keeps Envoy's large Node out of every later request;
    HTTP/2 keepalive on the xds cluster notices a dead server within seconds. ``hds_config`` points
    Envoy's Health Discovery Service at the same server, as Kuma's bootstrap does, so service probes
    need no file edit. ``dns_port`` (Kuma's node metadata ``dataplane.dns.port``) asks for the DNS
    listener on ``127.0.0.1:<dns_port>``. With ``stats_flush_interval`` Envoy also streams its cluster
    counters to meshxds' metrics service on the same connection, that often.
    """
    mesh = node_id.split(".", 1)[0]
    servers = [(ads_host, ads_port), *more_ads]
    lb_endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}} for host, port in servers
    ]
    node: dict[str, Any] = {"id": node_id, "cluster": mesh}
    if dns_port:
        node["metadata"] = {"dataplane.dns.port": str(dns_port)}
    config: dict[str, Any] = {
        "node": node,
        "admin": {"address": {"socket_address": {"address": admin_address, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
                "set_node_on_first_message_only": True,
            },
            "cds_config": {"resource_api_version": "V3", "ads": {}},
            "lds_config": {"resource_api_version": "V3", "ads": {}},
        },
        "hds_config": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
            "set_node_on_first_message_only": True,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds_cluster",
                    "type": "STRICT_DNS" if any(_is_hostname(h) for h, _ in servers) else "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        HTTP_OPTIONS_KEY: {
                            "@type": f"type.googleapis.com/{HTTP_OPTIONS_KEY}",
                            "explicit_http_config": {
                                "http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "5s"}}
                            },
                        }
                    },
                    "upstream_connection_options": {"tcp_keepalive": {}},
                    "load_assignment": {
                        "cluster_name": "xds_cluster",
                        "endpoints": [{"lb_endpoints": lb_endpoints}],
                    },
                }
            ]
        },
    }
    if stats_flush_interval is not None:  # counters to meshxds' metrics service, for `migrate plan`
        config["stats_sinks"] = [sink_config("xds_cluster")]
        config["stats_flush_interval"] = f"{stats_flush_interval:g}s"
    return secure_ads(config, ads_host, token, ca_pem)


def secure_ads(config: dict[str, Any], ads_host: str, token: str | None, ca_pem: bytes | None) -> dict[str, Any]:
    """Kuma's bootstrap security (``pkg/xds/bootstrap/template_v3.go``): the token as ``authorization`` initial
    metadata on the ADS gRPC service (raw, no ``Bearer``), and TLS to the server trusting ``ca_pem`` with the
    server's SAN checked against the host Envoy dials (DNS or IP, as Kuma's ``cp_validation_ctx``)."""
    ads = config["dynamic_resources"]["ads_config"]["grpc_services"][0]
    if token is not None:
        ads["initial_metadata"] = [{"key": "authorization", "value": token}]
    if ca_pem is not None:
        san_type = "DNS" if _is_hostname(ads_host) else "IP_ADDRESS"
        context = {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": ads_host,
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "alpn_protocols": ["h2"],
                "validation_context": {
                    "trusted_ca": {"inline_string": ca_pem.decode()},
                    "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": ads_host}}],
                },
            },
        }
        cluster = config["static_resources"]["clusters"][0]
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": context}
    return config


def _is_hostname(host: str) -> bool:
    return not all(part.isdigit() for part in host.split(".")) and ":" not in host
