"""Reading encoded protobuf without decoding it: a field walker shared by the snapshot builder (references
in encoded filter configs) and the xDS server (discovery requests). Decoding with betterproto2 costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator


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


def fields(data: bytes, keep_fixed: bool = False) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) for every field; varints as int, length-delimited as bytes.

    Fixed-width fields are skipped (no discovery message the server reads uses them), or with
    ``keep_fixed`` yielded as their 8 or 4 raw little-endian bytes (a double is ``struct.unpack("<d", value)``).
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
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if keep_fixed:
                yield number, data[pos : pos + size]
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire_type} in field {number}")
    if pos != end:
        raise WireError("truncated message")
