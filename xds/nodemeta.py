"""What a sidecar says about itself in its Node metadata (Kuma's ``DataplaneMetadataFromXdsMetadata``,
pkg/core/xds/metadata.go), read from the encoded Node without decoding it.

Only what meshxds uses: ``dataplane.dns.port`` (the port of the DNS listener, kuma-dp's
``--dns-envoy-port``). Kuma writes it as a string value; a number value is accepted too.
"""

from __future__ import annotations

import struct

from meshxds.codec.wire import WireError, fields, read_varint

DNS_PORT = "dataplane.dns.port"  # FieldDataplaneDNSPort


def metadata_values(node: bytes) -> dict[str, str]:
    """Node.metadata (field 3, a Struct) as key → string, for string, number and bool values."""
    out: dict[str, str] = {}
    for number, value in fields(node):
        if number == 3 and isinstance(value, bytes):
            for n, entry in fields(value):  # Struct.fields: map<string, Value> (field 1)
                if n == 1 and isinstance(entry, bytes):
                    key, text = _entry(entry)
                    if key and text is not None:
                        out[key] = text
    return out


def dns_port(node: bytes) -> int:
    """``dataplane.dns.port``, or 0 when absent or not a port (Kuma's ``uint32Metadata`` is as lenient)."""
    text = metadata_values(node).get(DNS_PORT, "")
    try:
        port = int(float(text))
    except ValueError:
        return 0
    return port if 0 < port < 65536 else 0


def _entry(entry: bytes) -> tuple[str, str | None]:
    key, text = "", None
    for number, value in fields(entry):
        if number == 1 and isinstance(value, bytes):
            key = value.decode()
        elif number == 2 and isinstance(value, bytes):
            text = _value(value)
    return key, text


def _value(data: bytes) -> str | None:
    """google.protobuf.Value: number 2 (double, read here by hand: the walker skips fixed64), string 3, bool 4."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 2 and wire_type == 1:
            (number_value,) = struct.unpack_from("<d", data, pos)
            return repr(number_value)
        if number == 3 and wire_type == 2:
            size, pos = read_varint(data, pos)
            return data[pos : pos + size].decode()
        if number == 4 and wire_type == 0:
            flag, pos = read_varint(data, pos)
            return "true" if flag else "false"
        if wire_type == 0:
            _, pos = read_varint(data, pos)
        elif wire_type == 2:
            size, pos = read_varint(data, pos)
            pos += size
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type} in a metadata value")
    return None
