"""Envoy bootstrap pointing a sidecar at meshxds over ADS (SotW or Delta).

One function builds the dict; ``meshxds bootstrap`` prints it as YAML and the tests
and the demo start Envoy with it, so what users run is what is tested.
"""

from __future__ import annotations

from typing import Any

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def bootstrap_config(
    node_id: str,
    ads_host: str = "127.0.0.1",
    ads_port: int = 18000,
    delta: bool = False,
    admin_address: str = "127.0.0.1",
    admin_port: int = 9901,
    token: str | None = None,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """A complete bootstrap: node id ``<mesh>.<name>``, ADS over gRPC, CDS and LDS via ADS.

    ``set_node_on_first_message_only`` keeps Envoy's ~60 KB Node out of every later request;
    HTTP/2 keepalive on the xds cluster notices a dead server within seconds.
    """
    mesh = node_id.split(".", 1)[0]
    config: dict[str, Any] = {
        "node": {"id": node_id, "cluster": mesh},
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
        "static_resources": {
            "clusters": [
                {
                    "name": "xds_cluster",
                    "type": "STRICT_DNS" if _is_hostname(ads_host) else "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        HTTP_PROTOCOL_OPTIONS: {
                            "@type": f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}",
                            "explicit_http_config": {
                                "http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "5s"}}
                            },
                        }
                    },
                    "upstream_connection_options": {"tcp_keepalive": {}},
                    "load_assignment": {
                        "cluster_name": "xds_cluster",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {"socket_address": {"address": ads_host, "port_value": ads_port}}
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ]
        },
    }
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


def with_redirect_listener(config: dict[str, Any], address: str, port: int) -> dict[str, Any]:
    """Add a static listener standing in for the transparent proxy's iptables redirect.

    Without iptables nothing reaches the ``bind_to_port: false`` outbound listeners of a
    transparent-proxy Dataplane. A client connects to ``address:port`` instead and sends a PROXY
    protocol header naming the original destination (e.g. a MeshService VIP); the listener
    restores that destination and hands the connection to the outbound listener for it.
    """
    listener = {
        "name": f"redirect-emulation:{port}",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "use_original_dst": True,
        "listener_filters": [
            {
                "name": "envoy.filters.listener.proxy_protocol",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"
                },
            }
        ],
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.direct_response",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.direct_response.v3.Config",
                            "response": {"inline_string": "no outbound listener for that destination\n"},
                        },
                    }
                ]
            }
        ],
    }
    out = dict(config)
    static = dict(out.get("static_resources", {}))
    static["listeners"] = [*static.get("listeners", []), listener]
    out["static_resources"] = static
    return out
