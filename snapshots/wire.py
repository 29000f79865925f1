"""The few references the snapshot builder needs from encoded filter configs, read with ``codec.wire``'s
walker (decoding them with betterproto2 costs milliseconds).
"""

from __future__ import annotations

from meshxds.codec.wire import fields

TCP_PROXY_URL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HCM_URL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def field_values(data: bytes, number: int) -> list[bytes]:
    """The payloads of length-delimited field ``number`` in one encoded message."""
    return [v for n, v in fields(data) if n == number and isinstance(v, bytes)]


def _strings(data: bytes, *path: int) -> list[str]:
    """Follow nested message fields ``path`` (the last one a string) and collect every value."""
    level = [data]
    for number in path:
        level = [child for msg in level for child in field_values(msg, number)]
    return [v.decode() for v in level]


def filter_references(type_url: str, value: bytes) -> tuple[list[str], list[str]]:
    """(clusters, RDS route names) of a tcp_proxy or HTTP connection manager config (incl. inline routes)."""
    if type_url == TCP_PROXY_URL:
        return _strings(value, 2), []  # TcpProxy.cluster
    if type_url == HCM_URL:
        clusters = [c for inline in field_values(value, 4) for c in route_config_clusters(inline)]  # route_config
        return clusters, _strings(value, 3, 2)  # rds.route_config_name
    return [], []


def route_config_clusters(route_config: bytes) -> list[str]:
    # RouteConfiguration.virtual_hosts(2) → VirtualHost.routes(3) → Route.route(2) → RouteAction.cluster(1)
    return _strings(route_config, 2, 3, 2, 1)
