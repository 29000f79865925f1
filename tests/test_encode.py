"""The fast encoder is wire-equivalent to betterproto2's ``bytes()``.

betterproto2 emits fields in declaration order and map entries in insertion
order; we emit field-number order and sorted map keys. So every comparison is
done three ways: exact bytes after putting betterproto2's output into canonical
order (``canonical`` below, schema-driven), same length, and decode-equality
(``Cls.parse(ours) == msg``).
"""

from __future__ import annotations

import datetime
import math
import struct
from collections.abc import Callable
from typing import Any

import betterproto2
import pytest
from envoy_data_plane.cel.expr import SourceInfo
from envoy_data_plane.envoy.config.cluster.v3 import Cluster, ClusterDiscoveryType
from envoy_data_plane.envoy.config.core.v3 import HealthStatus, Metadata, SocketAddress
from envoy_data_plane.envoy.config.endpoint.v3 import ClusterLoadAssignment, LbEndpoint
from envoy_data_plane.envoy.config.listener.v3 import Listener
from envoy_data_plane.envoy.config.route.v3 import RouteAction, RouteConfiguration
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import HttpConnectionManager
from envoy_data_plane.envoy.extensions.filters.network.tcp_proxy.v3 import TcpProxy
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import HttpProtocolOptions
from envoy_data_plane.envoy.service.discovery.v3 import DeltaDiscoveryResponse, DiscoveryResponse
from envoy_data_plane.google.protobuf import Any as AnyMessage
from envoy_data_plane.google.protobuf import Struct
from envoy_data_plane.io.prometheus.client import Histogram
from envoy_data_plane.validate import (
    DoubleRules,
    DurationRules,
    Fixed64Rules,
    FloatRules,
    Int32Rules,
    SFixed32Rules,
    SInt64Rules,
    TimestampRules,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import samples
from meshxds.codec.encode import encode_message, pack, plan_for, varint

# --------------------------------------------------------------------------- canonical order for bytes()


def _fields(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Split wire bytes into (field number, raw tag+length prefix, payload-or-value)."""
    out, i = [], 0
    while i < len(data):
        start = i
        key, i = _read_varint(data, i)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, j = _read_varint(data, i)
            out.append((number, data[start:i], data[i:j]))
            i = j
            continue
        if wire_type == 2:
            length, i = _read_varint(data, i)
            out.append((number, data[start:i], data[i : i + length]))
            i += length
            continue
        size = {1: 8, 5: 4}[wire_type]
        out.append((number, data[start:i], data[i : i + size]))
        i += size
    return out


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def canonical(cls: type, data: bytes) -> bytes:
    """betterproto2's bytes put into protobuf's deterministic order: fields by number, map entries by key."""
    meta_by_number = {m.number: (n, m) for n, m in cls._betterproto.meta_by_field_name.items()}  # type: ignore[attr-defined]
    parts: list[tuple[int, Any, bytes]] = []
    for seq, (number, prefix, payload) in enumerate(_fields(data)):
        name, meta = meta_by_number[number]
        sort_key: Any = seq
        if meta.proto_type == betterproto2.TYPE_MAP:
            entry_cls = cls._betterproto.cls_by_field[name]  # type: ignore[attr-defined]
            sort_key = entry_cls.parse(payload).key
            if meta.map_meta[1].proto_type == betterproto2.TYPE_MESSAGE and meta.map_meta[1].unwrap is None:
                value_cls = cls._betterproto.cls_by_field[f"{name}.value"]  # type: ignore[attr-defined]
                payload = b"".join(
                    p + (canonical(value_cls, v) if n == 2 else v) for n, p, v in _fields(payload) if n in (1, 2)
                )
        elif meta.proto_type == betterproto2.TYPE_MESSAGE and meta.unwrap is None:
            payload = canonical(cls._betterproto.cls_by_field[name], payload)  # type: ignore[attr-defined]
        parts.append((number, sort_key, _retag(prefix, payload)))
    parts.sort(key=lambda p: (p[0], p[1]))
    return b"".join(p[2] for p in parts)


def _retag(prefix: bytes, payload: bytes) -> bytes:
    """Rebuild tag + (new) length + payload for length-delimited fields, tag + value otherwise."""
    key, i = _read_varint(prefix, 0)
    if key & 7 == 2:
        return prefix[:i] + varint(len(payload)) + payload
    return prefix + payload


def assert_equivalent(msg: Any) -> bytes:
    ours = encode_message(msg)
    theirs = bytes(msg)
    assert len(ours) == len(theirs)
    assert ours == canonical(type(msg), theirs)
    back = type(msg).parse(ours)
    assert back == type(msg).parse(theirs)
    assert back.to_dict() == msg.to_dict()
    return ours


# --------------------------------------------------------------------------- fixed resources


@pytest.mark.parametrize("msg", samples.every_kind(), ids=lambda m: type(m).__name__)
def test_every_resource_kind_matches_betterproto2(msg: Any) -> None:
    assert_equivalent(msg)


def test_samples_cover_the_translators_field_kinds() -> None:
    kinds = {type(m) for m in samples.every_kind()}
    assert {
        Cluster,
        ClusterLoadAssignment,
        Listener,
        RouteConfiguration,
        DiscoveryResponse,
        DeltaDiscoveryResponse,
    } <= kinds
    typed = samples.every_kind()[1].typed_extension_protocol_options[samples.HTTP_OPTIONS_KEY]
    assert typed.unpack() == HttpProtocolOptions.parse(bytes(typed.unpack()))


def test_field_number_order_where_betterproto2_uses_declaration_order() -> None:
    # Cluster declares transport_socket_matches (43) before name (1); protobuf sorts by number.
    cluster = samples.cluster("c")
    ours = encode_message(cluster)
    numbers = [n for n, _, _ in _fields(ours)]
    assert numbers == sorted(numbers)
    assert ours != bytes(cluster)
    assert_equivalent(cluster)


def test_map_order_is_sorted_so_equal_content_gives_equal_bytes() -> None:
    a = Metadata(filter_metadata={"z": Struct.from_dict({"b": 1, "a": 2}), "a": Struct.from_dict({"x": "y"})})
    b = Metadata(filter_metadata={"a": Struct.from_dict({"x": "y"}), "z": Struct.from_dict({"a": 2, "b": 1})})
    assert bytes(a) != bytes(b)  # betterproto2: insertion order
    assert encode_message(a) == encode_message(b)
    assert [k for _, _, k in _fields(encode_message(a))] == sorted(k for _, _, k in _fields(encode_message(a)))
    assert_equivalent(a)


def test_presence_semantics() -> None:
    # Oneof enum at its zero value is present (STATIC = 0); plain zero scalars are not.
    static = Cluster(name="s", type=ClusterDiscoveryType.STATIC, per_connection_buffer_limit_bytes=0)
    assert encode_message(static) == b"\x0a\x01s" + b"\x10\x00" + b"\x2a\x00"  # wrapper 0 = empty message
    assert_equivalent(static)
    assert encode_message(Cluster()) == b""
    assert encode_message(SocketAddress(port_value=0)) == b"\x18\x00"  # oneof member set to 0
    assert encode_message(LbEndpoint(health_status=HealthStatus.UNKNOWN)) == b""  # enum 0 omitted
    assert encode_message(RouteAction(timeout=datetime.timedelta(0))) == b"\x42\x00"  # Duration 0 present


def test_scalar_encodings() -> None:
    negative = Int32Rules(const=-1)
    assert encode_message(negative) == b"\x08" + b"\xff" * 9 + b"\x01"  # 10-byte varint
    assert SInt64Rules(const=-1).__class__.parse(encode_message(SInt64Rules(const=-1))).const == -1
    assert encode_message(SInt64Rules(const=-1)) == b"\x08\x01"  # zigzag
    assert encode_message(SInt64Rules(const=1)) == b"\x08\x02"
    assert encode_message(Fixed64Rules(const=1)) == b"\x09" + struct.pack("<Q", 1)
    assert encode_message(SFixed32Rules(const=-2)) == b"\x0d" + struct.pack("<i", -2)
    assert encode_message(DoubleRules(const=1.5)) == b"\x09" + struct.pack("<d", 1.5)
    assert encode_message(FloatRules(const=1.5)) == b"\x0d" + struct.pack("<f", 1.5)
    packed = Int32Rules(in_=[1, -1, 300])
    assert encode_message(packed) == b"\x32\x0d" + b"\x01" + b"\xff" * 9 + b"\x01" + b"\xac\x02"
    for msg in (negative, packed, SInt64Rules(in_=[-5, 5]), Fixed64Rules(in_=[1, 2]), FloatRules(not_in=[0.5])):
        assert_equivalent(msg)


def test_negative_duration_keeps_one_sign() -> None:
    # betterproto2 encodes -1.5 s as seconds=-1, nanos=+500000000 (Envoy would read -0.5 s); we keep the sign.
    ours = encode_message(RouteAction(timeout=-datetime.timedelta(seconds=1.5)))
    duration = b"\x08" + varint(-1) + b"\x10" + varint(-500_000_000)
    assert ours == b"\x42" + varint(len(duration)) + duration


def test_pack_matches_any_pack() -> None:
    proxy = TcpProxy(stat_prefix="x", cluster="x")
    assert pack(proxy) == AnyMessage.pack(proxy)


def test_plan_is_in_field_number_order() -> None:
    plan = plan_for(HttpConnectionManager)
    assert [r.number for r in plan] == sorted(r.number for r in plan)
    assert {r.shape for r in plan_for(SourceInfo)} == {"single", "repeated", "packed", "map"}


# --------------------------------------------------------------------------- generated variants

_INT_RANGES = {
    betterproto2.TYPE_INT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SINT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_INT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SINT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_UINT32: (0, 2**32 - 1),
    betterproto2.TYPE_FIXED32: (0, 2**32 - 1),
    betterproto2.TYPE_UINT64: (0, 2**64 - 1),
    betterproto2.TYPE_FIXED64: (0, 2**64 - 1),
}
_UTC = datetime.UTC


def _scalar(proto_type: str, field_cls: Any) -> st.SearchStrategy[Any]:
    if proto_type in _INT_RANGES:
        lo, hi = _INT_RANGES[proto_type]
        return st.one_of(st.integers(-3, 300).filter(lambda i: lo <= i <= hi), st.integers(lo, hi))
    strategies: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        betterproto2.TYPE_BOOL: st.booleans,
        betterproto2.TYPE_FLOAT: lambda: st.floats(width=32, allow_nan=False),
        betterproto2.TYPE_DOUBLE: lambda: st.floats(allow_nan=False),
        betterproto2.TYPE_STRING: lambda: st.text(max_size=12),
        betterproto2.TYPE_BYTES: lambda: st.binary(max_size=12),
        betterproto2.TYPE_ENUM: lambda: st.sampled_from(list(field_cls)),
    }
    return strategies[proto_type]()


def _unwrapped(wrapper: type) -> st.SearchStrategy[Any]:
    name = wrapper.__name__
    if name == "Duration":  # non-negative: betterproto2 mis-encodes negative durations (tested above)
        return st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(days=3650))
    if name == "Timestamp":
        return st.datetimes(timezones=st.just(_UTC), min_value=datetime.datetime(1970, 1, 2))
    meta = wrapper._betterproto.meta_by_field_name["value"]  # type: ignore[attr-defined]
    return _scalar(meta.proto_type, None)


def _value(cls: type, name: str, meta: Any, depth: int) -> st.SearchStrategy[Any]:
    return _typed(cls._betterproto.cls_by_field[name], meta.proto_type, meta.unwrap, depth)  # type: ignore[attr-defined]


def _typed(field_cls: Any, proto_type: str, unwrap: Any, depth: int) -> st.SearchStrategy[Any]:
    if unwrap is not None:
        return _unwrapped(unwrap())
    if field_cls is AnyMessage:  # must name a registered type, or to_dict() cannot unpack it
        return st.sampled_from(_ANY_PAYLOADS).flatmap(lambda c: messages(c, 1)).map(pack)
    if proto_type == betterproto2.TYPE_MESSAGE:
        return messages(field_cls, depth - 1)
    return _scalar(proto_type, field_cls)


_ANY_PAYLOADS = [TcpProxy, HttpProtocolOptions, Metadata, DurationRules]
_SOMETIMES = st.sampled_from([False, False, False, True])


@st.composite
def _message(draw: st.DrawFn, cls: type, depth: int) -> Any:
    kwargs: dict[str, Any] = {}
    groups: set[str] = set()
    for name, meta in cls._betterproto.meta_by_field_name.items():  # type: ignore[attr-defined]
        is_message = meta.proto_type in (betterproto2.TYPE_MESSAGE, betterproto2.TYPE_MAP)
        if (is_message and depth <= 0) or (meta.group and meta.group in groups) or not draw(_SOMETIMES):
            continue
        if meta.proto_type == betterproto2.TYPE_MAP:
            key_meta, value_meta = meta.map_meta
            value_cls = cls._betterproto.cls_by_field[f"{name}.value"]  # type: ignore[attr-defined]
            values = _typed(value_cls, value_meta.proto_type, value_meta.unwrap, depth)
            kwargs[name] = draw(st.dictionaries(_scalar(key_meta.proto_type, None), values, max_size=3))
        elif meta.repeated:
            kwargs[name] = draw(st.lists(_value(cls, name, meta, depth), max_size=3))
        else:
            kwargs[name] = draw(_value(cls, name, meta, depth))
        if meta.group:
            groups.add(meta.group)
    return cls(**kwargs)


def messages(cls: Any, depth: int) -> st.SearchStrategy[Any]:
    """Random valid instances of any betterproto2 message class: each field maybe set, oneofs respected."""
    if cls is Struct:
        json = st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
            max_leaves=6,
        )
        return st.dictionaries(st.text(max_size=6), json, max_size=4).map(Struct.from_dict)
    return _message(cls, depth)


_GENERATED = [
    (Cluster, 3),
    (ClusterLoadAssignment, 5),
    (Listener, 4),
    (HttpConnectionManager, 3),
    (TcpProxy, 3),
    (RouteConfiguration, 5),
    (DiscoveryResponse, 2),
    (DeltaDiscoveryResponse, 3),
    (Metadata, 3),
    (SourceInfo, 3),  # int64 map keys, packed int32
    (Histogram, 3),  # sint32/sint64 packed, doubles, Timestamp
    (DurationRules, 2),  # repeated Duration
    (TimestampRules, 2),
    (FloatRules, 1),
    (SFixed32Rules, 1),
    (Fixed64Rules, 1),
]


@pytest.mark.parametrize(("cls", "depth"), _GENERATED, ids=[c.__name__ for c, _ in _GENERATED])
def test_generated_messages_match_betterproto2(cls: type, depth: int) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(messages(cls, depth))
    def check(msg: Any) -> None:
        assert_equivalent(msg)

    check()


def test_nan_is_encoded_like_betterproto2() -> None:
    msg = DoubleRules(const=math.nan)
    assert encode_message(msg) == bytes(msg)


def test_struct_fast_path_matches_generic_encoding() -> None:
    # Strings take the hand-inlined path (incl. >127-byte lengths); other kinds fall back to the plan.
    msg = Struct.from_dict({"b": "x" * 300, "a": "short", "n": 1.5, "l": ["y", None], "s": {"k": "v"}, "t": True})
    assert_equivalent(msg)
    assert assert_equivalent(Metadata(filter_metadata={"m": msg})) == encode_message(
        Metadata(filter_metadata={"m": Struct.from_dict(dict(reversed(list(msg.to_dict().items()))))})
    )


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**63 - 1, -1, -128, -(2**63)])
def test_varint_matches_the_definition(n: int) -> None:
    """Base 128, low group first, continuation bit on all but the last; negatives as 64-bit two's complement
    (the precomputed one- and two-byte forms included)."""
    value = n % (1 << 64)
    expected = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        expected.append(low | (0x80 if value else 0))
        if not value:
            break
    assert varint(n) == bytes(expected)
    assert _read_varint(varint(n), 0) == (n % (1 << 64), len(expected))
