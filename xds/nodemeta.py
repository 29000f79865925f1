"""What a sidecar says about itself in its Node metadata (Kuma's ``DataplaneMetadataFromXdsMetadata``,
pkg/core/xds/metadata.go), read from the encoded Node without decoding it.

Only what meshxds uses: ``dataplane.dns.port`` (the port of the DNS listener, kuma-dp's
``--dns-envoy-port``). Kuma writes it as a string value; a number value is accepted too.
"""

from __future__ import annotations

import struct

from meshxds.codec.wire import fields

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
    """google.protobuf.Value as text: number 2 (a double), string 3, bool 4; None for the other kinds."""
    for number, value in fields(data, keep_fixed=True):
        if number == 2 and isinstance(value, bytes) and len(value) == 8:
            return repr(struct.unpack("<d", value)[0])
        if number == 3 and isinstance(value, bytes):
            return value.decode()
        if number == 4 and isinstance(value, int):
            return "true" if value else "false"
    return None
