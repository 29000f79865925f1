"""Reading encoded protobuf without decoding it: a field walker, and the few references the snapshot
builder needs from encoded filter configs (decoding them with betterproto2 costs milliseconds).

The xDS server reads discovery requests with the same walker (``xds.wire`` imports it from here, so
the pipeline only points forward: snapshots → xds).
"""

from __future__ import annotations

from collections.abc import Iterator

TCP_PROXY_URL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HCM_URL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


class WireError(ValueError):
    """Bytes that are not valid protobuf for the expected message."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) for every field; varints as int, length-delimited as bytes.

    Fixed-width fields are skipped (no discovery message the server reads uses them).
    """
    pos, end = 0, len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
            yield number, value
        elif wire_type == 2:
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise WireError(f"field {number} overruns the message")
            yield number, data[pos : pos + size]
            pos += size
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type} in field {number}")
    if pos != end:
        raise WireError("truncated message")


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
