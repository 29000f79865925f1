"""Protobuf wire encoding for what we serve.

``encode_message`` is the one place a message becomes bytes; everything else
reuses those bytes. betterproto2's own ``bytes()`` re-validates every nested
message with a freshly built pydantic validator (costly per resource), so we
encode from a per-class *plan* computed once from betterproto2's field metadata
and read values straight from ``msg.__dict__``.

Wire semantics follow betterproto2 (and proto3): a non-optional scalar, string,
bytes, enum, repeated or map field is omitted when it holds its zero value;
message, optional and oneof fields are emitted whenever they are not ``None``,
even when zero or empty. Unwrapped well-known types (``BoolValue`` & co. as
Python scalars, ``Duration`` as ``timedelta``, ``Timestamp`` as ``datetime``) are
encoded as their wrapper message, so a wrapper holding 0 is an empty message.
Unlike betterproto2 we emit fields in field-number order and map entries in key
order (protobuf's deterministic mode): the same content always gives the same
bytes, which is what makes content hashes usable as versions.

``encode_any`` and the framing helpers build Any/response messages by
concatenation, which is byte-identical to protobuf's own encoding.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import betterproto2
from envoy_data_plane.google import protobuf as wkt
from envoy_data_plane.message_pool import default_message_pool

from meshxds.codec.construct import constructor

# A writer appends one field (tag included) holding value ``v`` to ``out``.
Writer = Callable[[bytearray, Any], None]

_SMALL = tuple(bytes([i]) for i in range(128))
_VARINT_TYPES = frozenset(
    {
        betterproto2.TYPE_ENUM,
        betterproto2.TYPE_BOOL,
        betterproto2.TYPE_INT32,
        betterproto2.TYPE_INT64,
        betterproto2.TYPE_UINT32,
        betterproto2.TYPE_UINT64,
    }
)
_ZIGZAG_TYPES = frozenset({betterproto2.TYPE_SINT32, betterproto2.TYPE_SINT64})
_FIXED_FORMATS = {
    betterproto2.TYPE_DOUBLE: ("<d", 1),
    betterproto2.TYPE_FIXED64: ("<Q", 1),
    betterproto2.TYPE_SFIXED64: ("<q", 1),
    betterproto2.TYPE_FLOAT: ("<f", 5),
    betterproto2.TYPE_FIXED32: ("<I", 5),
    betterproto2.TYPE_SFIXED32: ("<i", 5),
}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICRO = datetime.timedelta(microseconds=1)


def _slow_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Two-byte varints (128..16383: lengths of most resources and fields, ports) precomputed, like _SMALL.
_TWO = tuple(_slow_varint(i) if i >= 128 else b"" for i in range(1 << 14))


def varint(n: int) -> bytes:
    """Base-128 varint; negative numbers as their 64-bit two's complement (10 bytes), as protobuf does."""
    if 0 <= n < 128:
        return _SMALL[n]
    if 0 < n < 16384:
        return _TWO[n]
    return _slow_varint(n + (1 << 64) if n < 0 else n)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint((field << 3) | 2) + varint(len(payload)) + payload


_TYPE_URL_FIELDS: dict[str, bytes] = {}


def encode_any(type_url: str, value: bytes) -> bytes:
    """A google.protobuf.Any: type_url = 1, value = 2."""
    head = _TYPE_URL_FIELDS.get(type_url)
    if head is None:
        head = _TYPE_URL_FIELDS[type_url] = length_delimited(1, type_url.encode())
    return head + length_delimited(2, value)


def encode_message(message: Any) -> bytes:
    """Serialise an envoy-data-plane message: wire-equivalent to ``bytes(message)``, ~100x faster."""
    return bytes(_encode(message))


_new_any = constructor(wkt.Any)


def pack(message: Any) -> wkt.Any:
    """``Any.pack`` without betterproto2's slow ``bytes()`` or a validated constructor: for typed_config and friends."""
    return _new_any(type_url=default_message_pool.type_to_url[type(message)], value=encode_message(message))


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one field is written: precomputed once per class from betterproto2's metadata."""

    number: int
    name: str
    shape: str  # "single", "repeated", "packed" or "map"
    kind: str  # element kind: "varint", "string", "bytes", "message" (inlined) or "other" (a writer call)
    always: bool  # emit whenever not None (message/optional/oneof); otherwise skip zero/empty values
    write: Writer  # writes one element (the entry's value for maps, the whole list for packed)
    key_kind: str = ""  # maps only
    write_key: Writer | None = None  # maps only


_ENCODERS: dict[type, Callable[[dict[str, Any]], bytearray]] = {}


def _encode(msg: Any) -> bytearray:
    encoder = _ENCODERS.get(msg.__class__) or _encoder_for(msg.__class__)
    return encoder(msg.__dict__)


def _encoder_for(cls: type) -> Callable[[dict[str, Any]], bytearray]:
    encoder = _ENCODERS[cls] = _compile(cls)
    return encoder


# Encoded Struct entries of string values, by (key, value): Kuma's metadata repeats the same few tags
# (kuma.io/protocol: http, kuma.io/zone: ...) on every endpoint. Bounded; cleared when full.
_STRING_ENTRIES: dict[tuple[str, str], bytes] = {}
_STRING_ENTRIES_MAX = 1 << 16


def _encode_struct(d: dict[str, Any]) -> bytearray:
    """google.protobuf.Struct, hand-inlined: Kuma's metadata is Structs of strings, most of a CLA's bytes.

    Same bytes as the compiled plan (entries by key; a string Value is ``string_value`` = 3); any other
    Value kind goes through the generic encoder.
    """
    out = bytearray()
    fields = d["fields"]
    for key in sorted(fields):
        value = fields[key].__dict__
        s = value["string_value"]
        if s is not None and not value.get("_unknown_fields"):
            entry = _STRING_ENTRIES.get((key, s))
            if entry is None:
                entry = _struct_entry(key, b"\x1a" + _length_prefixed(s.encode()))
                if len(_STRING_ENTRIES) >= _STRING_ENTRIES_MAX:
                    _STRING_ENTRIES.clear()
                _STRING_ENTRIES[(key, s)] = entry
            out += entry
        else:
            out += _struct_entry(key, _encode(fields[key]))
    unknown = d.get("_unknown_fields")
    if unknown:
        out += unknown
    return out


def _length_prefixed(b: bytes | bytearray) -> bytes:
    n = len(b)
    return (_SMALL[n] if n < 128 else varint(n)) + b


def _struct_entry(key: str, value: bytes | bytearray) -> bytes:
    """One ``fields`` map entry (field 1): key = 1, Value = 2."""
    return b"\x0a" + _length_prefixed(b"\x0a" + _length_prefixed(key.encode()) + b"\x12" + _length_prefixed(value))


_ENCODERS[wkt.Struct] = _encode_struct


def field_metadata(cls: type) -> dict[str, betterproto2.FieldMetadata]:
    """betterproto2's metadata of each field, read from the dataclass fields.

    ``cls._betterproto`` holds the same, but building it resolves every field's type hint (the whole
    class's hints once per field): seconds for the classes of one build, spent on nothing we read.
    """
    return {f.name: f.metadata["betterproto"] for f in dataclasses.fields(cls)}


def plan_for(cls: type) -> tuple[FieldPlan, ...]:
    """The encoding plan of one message class, in field-number order."""
    rows = []
    for name, meta in field_metadata(cls).items():
        pt = meta.proto_type
        if pt == betterproto2.TYPE_MAP:
            assert meta.map_meta is not None
            key, value = meta.map_meta
            row = FieldPlan(
                meta.number,
                name,
                "map",
                _kind(value.proto_type, value.unwrap),
                False,
                _single_writer(2, value.proto_type, value.unwrap),
                _kind(key.proto_type, None),
                _single_writer(1, key.proto_type, None),
            )
        elif meta.repeated and (pt in _VARINT_TYPES or pt in _ZIGZAG_TYPES or pt in _FIXED_FORMATS):
            row = FieldPlan(meta.number, name, "packed", "other", False, _packed_writer(meta.number, pt))
        else:
            always = not meta.repeated and (bool(meta.optional or meta.group) or pt == betterproto2.TYPE_MESSAGE)
            shape = "repeated" if meta.repeated else "single"
            writer = _single_writer(meta.number, pt, meta.unwrap)
            row = FieldPlan(meta.number, name, shape, _kind(pt, meta.unwrap), always, writer)
        rows.append(row)
    return tuple(sorted(rows, key=lambda r: r.number))


def _kind(proto_type: str, unwrap: Callable[[], type] | None) -> str:
    if unwrap is not None:
        return "other"
    if proto_type in _VARINT_TYPES:
        return "varint"
    if proto_type in (betterproto2.TYPE_STRING, betterproto2.TYPE_BYTES, betterproto2.TYPE_MESSAGE):
        return proto_type
    return "other"


def _element_code(kind: str, tag: str, writer: str, var: str, out: str) -> list[str]:
    """Python lines appending field ``tag`` holding ``var`` to ``out``; "other" kinds call ``writer``."""
    if kind == "varint":
        return [f"{out} += {tag}", f"{out} += _SMALL[{var}] if 0 <= {var} < 128 else varint({var})"]
    if kind == "other":
        return [f"{writer}({out}, {var})"]
    payload = {
        "string": f"{var}.encode()",
        "bytes": var,
        "message": f"(_ENCODERS.get({var}.__class__) or _encoder_for({var}.__class__))({var}.__dict__)",
    }[kind]
    return [
        f"b = {payload}",
        f"{out} += {tag}",
        "n = len(b)",
        f"{out} += _SMALL[n] if n < 128 else varint(n)",
        f"{out} += b",
    ]


def _field_code(row: FieldPlan, env: dict[str, Any]) -> list[str]:
    n = row.number
    env[f"W{n}"] = row.write
    if row.shape == "single":
        env[f"T{n}"] = _tag(n, 0 if row.kind == "varint" else 2)
        return _element_code(row.kind, f"T{n}", f"W{n}", "v", "out")
    if row.shape == "packed":
        return [f"W{n}(out, v)"]
    env[f"T{n}"] = _tag(n, 2)
    if row.shape == "repeated":
        return ["for x in v:", *("    " + c for c in _element_code(row.kind, f"T{n}", f"W{n}", "x", "out"))]
    # Map entries are messages {key = 1, value = 2}, both always written, in key order (deterministic).
    env[f"K{n}"] = row.write_key
    env[f"KT{n}"] = _tag(1, 0 if row.key_kind == "varint" else 2)
    env[f"VT{n}"] = _tag(2, 0 if row.kind == "varint" else 2)
    entry = [
        "e = bytearray()",
        *_element_code(row.key_kind, f"KT{n}", f"K{n}", "x", "e"),
        "x = v[x]",
        *_element_code(row.kind, f"VT{n}", f"W{n}", "x", "e"),
        f"out += T{n}",
        "n = len(e)",
        "out += _SMALL[n] if n < 128 else varint(n)",
        "out += e",
    ]
    return ["for x in sorted(v):", *("    " + c for c in entry)]


def _compile(cls: type) -> Callable[[dict[str, Any]], bytearray]:
    """Turn a class's plan into one straight-line function reading the instance ``__dict__``.

    About twice as fast as interpreting the plan row by row (no per-field loop, no call per value for
    the common kinds). Only code built from betterproto2's own field metadata runs: field names are
    Python identifiers, everything else is a constant or a writer bound in ``env``.
    """
    env: dict[str, Any] = {"_SMALL": _SMALL, "varint": varint, "_ENCODERS": _ENCODERS, "_encoder_for": _encoder_for}
    lines = ["def encode(d):", "    out = bytearray()"]
    for row in plan_for(cls):
        lines.append(f"    v = d[{row.name!r}]")
        lines.append("    if v is not None:" if row.always else "    if v:")
        lines += ["        " + c for c in _field_code(row, env)]
    lines += ["    v = d.get('_unknown_fields')", "    if v:", "        out += v", "    return out"]
    exec(compile("\n".join(lines), f"<encoder {cls.__qualname__}>", "exec"), env)
    encoder: Callable[[dict[str, Any]], bytearray] = env["encode"]
    return encoder


def _tag(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


def _single_writer(number: int, proto_type: str, unwrap: Callable[[], type] | None) -> Writer:
    """Writer for one value (a singular field, one element of a repeated field, or a map key/value)."""
    if proto_type in _VARINT_TYPES:
        tag = _tag(number, 0)

        def write_varint(out: bytearray, v: int) -> None:
            out += tag
            out += _SMALL[v] if 0 <= v < 128 else varint(v)

        return write_varint
    if proto_type in _ZIGZAG_TYPES:
        tag = _tag(number, 0)

        def write_zigzag(out: bytearray, v: int) -> None:
            out += tag
            out += varint(v << 1 if v >= 0 else ~(v << 1))

        return write_zigzag
    if proto_type in _FIXED_FORMATS:
        fmt, wire_type = _FIXED_FORMATS[proto_type]
        tag = _tag(number, wire_type)
        pack_fixed = struct.Struct(fmt).pack

        def write_fixed(out: bytearray, v: float) -> None:
            out += tag
            out += pack_fixed(v)

        return write_fixed
    tag = _tag(number, 2)
    if proto_type == betterproto2.TYPE_STRING:
        payload: Callable[[Any], bytes | bytearray] = str.encode
    elif proto_type == betterproto2.TYPE_BYTES:
        payload = bytes
    elif proto_type == betterproto2.TYPE_MESSAGE:
        payload = _unwrapped_payload(unwrap()) if unwrap is not None else _encode
    else:
        raise NotImplementedError(f"protobuf type {proto_type}")

    return _length_delimited_writer(tag, payload)


def _length_delimited_writer(tag: bytes, payload: Callable[[Any], bytes | bytearray]) -> Writer:
    def write_length_delimited(out: bytearray, v: Any) -> None:
        b = payload(v)
        out += tag
        n = len(b)
        out += _SMALL[n] if n < 128 else varint(n)
        out += b

    return write_length_delimited


def _unwrapped_payload(wrapper: type) -> Callable[[Any], bytes | bytearray]:
    """Encode a Python value held in place of a well-known wrapper message, as that message."""
    if wrapper is wkt.Duration:
        return _duration
    if wrapper is wkt.Timestamp:
        return _timestamp
    # BoolValue, UInt32Value, StringValue, ...: one field ``value`` = 1, omitted when zero.
    meta = field_metadata(wrapper)["value"]
    if meta.proto_type in _VARINT_TYPES:

        def wrapped_varint(v: int) -> bytes:
            return b"\x08" + (_SMALL[v] if 0 <= v < 128 else varint(v)) if v else b""

        return wrapped_varint
    inner = _single_writer(1, meta.proto_type, None)

    def wrapped(v: Any) -> bytearray:
        out = bytearray()
        if v:
            inner(out, v)
        return out

    return wrapped


def _seconds_nanos(seconds: int, nanos: int) -> bytes:
    out = b""
    if seconds:
        out += b"\x08" + varint(seconds)
    if nanos:
        out += b"\x10" + varint(nanos)
    return out


def _duration(v: datetime.timedelta) -> bytes:
    # seconds and nanos carry the same sign (betterproto2 gets negative durations wrong here).
    micros = v // _MICRO
    seconds = abs(micros) // 1_000_000
    nanos = abs(micros) % 1_000_000 * 1000
    return _seconds_nanos(-seconds, -nanos) if micros < 0 else _seconds_nanos(seconds, nanos)


def _timestamp(v: datetime.datetime) -> bytes:
    if v.tzinfo is None:
        raise ValueError("Timestamp needs a timezone-aware datetime")
    seconds, micros = divmod((v - _EPOCH) // _MICRO, 1_000_000)
    return _seconds_nanos(seconds, micros * 1000)


def _packed_writer(number: int, proto_type: str) -> Writer:
    tag = _tag(number, 2)
    if proto_type in _FIXED_FORMATS:
        fmt = _FIXED_FORMATS[proto_type][0]

        def packed(v: list[Any]) -> bytes:
            return struct.pack(f"<{len(v)}{fmt[1]}", *v)

    elif proto_type in _ZIGZAG_TYPES:

        def packed(v: list[Any]) -> bytes:
            return b"".join(varint(i << 1 if i >= 0 else ~(i << 1)) for i in v)

    else:

        def packed(v: list[Any]) -> bytes:
            return b"".join(map(varint, v))

    return _length_delimited_writer(tag, packed)
