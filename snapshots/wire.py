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
        return _strings(value, 2) + _strings(value, 10, 1, 1), []  # TcpProxy.cluster, weighted_clusters[].name
    if type_url == HCM_URL:
        clusters = [c for inline in field_values(value, 4) for c in route_config_clusters(inline)]  # route_config
        return clusters, _strings(value, 3, 2)  # rds.route_config_name
    return [], []


def route_config_clusters(route_config: bytes) -> list[str]:
    """Every cluster a route configuration sends to: single, weighted and mirror clusters."""
    # RouteConfiguration.virtual_hosts(2) → VirtualHost.routes(3) → Route.route(2) → RouteAction
    actions = [a for vh in field_values(route_config, 2) for r in field_values(vh, 3) for a in field_values(r, 2)]
    out: list[str] = []
    for action in actions:
        out += _strings(action, 1)  # cluster
        out += _strings(action, 3, 1, 1)  # weighted_clusters.clusters[].name
        out += _strings(action, 30, 1)  # request_mirror_policies[].cluster
    return out
