"""Protobuf wire encoding for what we serve.

``encode_message`` is the one place a message becomes bytes; everything else
reuses those bytes. ``encode_any`` and the framing helpers build Any/response
messages by concatenation, which is byte-identical to protobuf's own encoding.
"""

from __future__ import annotations

from typing import Any


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint((field << 3) | 2) + varint(len(payload)) + payload


def encode_any(type_url: str, value: bytes) -> bytes:
    """A google.protobuf.Any: type_url = 1, value = 2."""
    return length_delimited(1, type_url.encode()) + length_delimited(2, value)


def encode_message(message: Any) -> bytes:
    """Serialise an envoy-data-plane message (placeholder: betterproto2's own, ~1 ms a Cluster)."""
    return bytes(message)
