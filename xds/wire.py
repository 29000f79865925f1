"""Discovery requests in, discovery responses out, as raw protobuf bytes.

Envoy's first request carries its whole Node, which betterproto2 decodes slowly.
The parser here walks the wire format and skips what the server does not need: it reads
``node.id`` only when asked (first message of a stream) and never builds a Node. Responses
are framed by concatenating the cached, already-encoded ``Any`` bytes of each resource.
The field walker itself (``fields``, ``WireError``) is ``codec.wire``'s, re-exported here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from meshxds.codec.encode import length_delimited
from meshxds.codec.wire import WireError, fields, read_varint

CONTROL_PLANE_ID = "meshxds"
# Limits on what one request may carry: past them the stream ends with INVALID_ARGUMENT and a short
# message (a node id is echoed in logs and statuses; a names list is kept per stream).
MAX_NODE_ID = 512  # bytes; a Kuma node id is <mesh>.<name>, at most 63 + 1 + 253
MAX_NAMES = 50_000  # resource names in one request (an Envoy with 10,000 clusters subscribes to 10,000 CLAs)


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise WireError("expected a string field")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise WireError(f"invalid UTF-8 in a string field (byte {exc.start})") from None


def node_id(node: bytes) -> str:
    """``Node.id`` (field 1) without decoding the rest of the Node."""
    for number, value in fields(node):
        if number == 1:
            if isinstance(value, bytes) and len(value) > MAX_NODE_ID:
                raise WireError(f"node.id is {len(value)} bytes; the limit is {MAX_NODE_ID}")
            return _text(value)
    return ""


def _too_many(names: list[str]) -> None:
    if len(names) > MAX_NAMES:
        raise WireError(f"more than {MAX_NAMES} resource names in one request")


def request_node(request: bytes, field: int) -> bytes:
    """The encoded Node of a discovery request (field 2 in SotW, 1 in Delta); empty when absent."""
    for number, value in fields(request):
        if number == field and isinstance(value, bytes):
            return value
    return b""


@dataclass(frozen=True)
class ErrorDetail:
    """google.rpc.Status as Envoy fills it in a NACK."""

    code: int
    message: str


def _status(data: bytes) -> ErrorDetail:
    code, message = 0, ""
    for number, value in fields(data):
        if number == 1 and isinstance(value, int):
            code = value
        elif number == 2:
            message = _text(value)
    return ErrorDetail(code, message)


@dataclass(frozen=True)
class Request:
    """A DiscoveryRequest (SotW). ``node_id`` is None when the message carried no Node."""

    type_url: str = ""
    version_info: str = ""
    resource_names: tuple[str, ...] = ()
    response_nonce: str = ""
    error: ErrorDetail | None = None
    node_id: str | None = None
    # Digest of the resource_names region (the run of field 3 entries; b"" if none or not one run),
    # and whether it matched a ``known`` one, in which case ``resource_names`` was not decoded (empty).
    names_digest: bytes = b""
    names_reused: bool = False
    names_size: int = 0


@dataclass(frozen=True)
class DeltaRequest:
    """A DeltaDiscoveryRequest. ``node_id`` is None when the message carried no Node."""

    type_url: str = ""
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    initial_versions: dict[str, str] = field(default_factory=dict)
    response_nonce: str = ""
    error: ErrorDetail | None = None
    node_id: str | None = None


NAMES_KEY = 0x1A  # field 3, length-delimited: DiscoveryRequest.resource_names


def names_digest(region: bytes) -> bytes:
    return hashlib.blake2b(region, digest_size=16).digest() if region else b""


def _known_region(data: bytes, pos: int, known: Collection[tuple[bytes, int]]) -> tuple[bytes, int] | None:
    """The known (digest, length) whose bytes the names run starting at ``pos`` repeats exactly
    (compared byte for byte when the region is a shared one, which is cheaper than hashing it)."""
    for digest, length in known:
        end = pos + length
        if end > len(data) or (end != len(data) and data[end] == NAMES_KEY):
            continue
        shared = _regions.get((digest, length))
        if shared is not None:
            if data.startswith(shared[1], pos):
                return digest, length
        elif names_digest(data[pos:end]) == digest:
            return digest, length
    return None


# Name regions many streams send (thousands of proxies subscribe to the same CLAs): (digest, length) -> names,
# newest last; a stream's first request with one of them is not decoded again.
SHARED_REGIONS = 16
SHARE_NAMES_AT = 32  # fewer names are cheaper to decode than to look up
_regions: OrderedDict[tuple[bytes, int], tuple[tuple[str, ...], bytes]] = OrderedDict()  # -> (names, region)


def _shared_region(data: bytes, pos: int) -> tuple[bytes, int, tuple[str, ...]] | None:
    """A name region other streams sent before, repeated exactly from ``pos``."""
    if not _regions:
        return None
    match = _known_region(data, pos, _regions.keys())
    if match is None:
        return None
    _regions.move_to_end(match)
    return match[0], match[1], _regions[match][0]


def _remember_region(digest: bytes, region: bytes, names: tuple[str, ...]) -> None:
    key = (digest, len(region))
    _regions[key] = (names, region)
    _regions.move_to_end(key)
    if len(_regions) > SHARED_REGIONS:
        _regions.popitem(last=False)


def parse_request(data: bytes, want_node: bool = False, known: Collection[tuple[bytes, int]] = ()) -> Request:
    """Parse a DiscoveryRequest: version 1, node 2, names 3, type_url 4, nonce 5, error_detail 6.

    Every ACK repeats the whole subscription (every subscribed name): when the names region is
    byte-identical to a ``known`` one (digest, length), it is skipped instead of decoded. A region
    that many streams send (the same subscription) is decoded once and its names reused.
    """
    version, type_url, nonce = "", "", ""
    names: list[str] = []
    error: ErrorDetail | None = None
    node: str | None = None
    run_start = run_end = -1  # the first run of names; a second run means "not one region"
    runs = 0
    reused = False
    digest = b""
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        if data[pos] == NAMES_KEY and run_end != start:
            runs += 1
            run_start = start
            match = _known_region(data, start, known) if known and runs == 1 else None
            if match is not None:
                digest, reused, run_end, pos = match[0], True, start + match[1], start + match[1]
                continue
            shared = _shared_region(data, start) if runs == 1 else None
            if shared is not None:
                digest, run_end, pos, names = shared[0], start + shared[1], start + shared[1], list(shared[2])
                continue
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = read_varint(data, pos)
            continue
        if wire_type == 1 or wire_type == 5:
            pos += 8 if wire_type == 1 else 4
            continue
        if wire_type != 2:
            raise WireError(f"unsupported wire type {wire_type} in field {number}")
        size, pos = read_varint(data, pos)
        if pos + size > end:
            raise WireError(f"field {number} overruns the message")
        value = data[pos : pos + size]
        pos += size
        if number == 1:
            version = _text(value)
        elif number == 2:
            if want_node:
                node = node_id(value)
        elif number == 3:
            names.append(_text(value))
            run_end = pos
            _too_many(names)
        elif number == 4:
            type_url = _text(value)
        elif number == 5:
            nonce = _text(value)
        elif number == 6:
            error = _status(value)
    if pos != end:
        raise WireError("truncated message")
    if runs == 1 and not reused and not digest:
        digest = names_digest(data[run_start:run_end])
        if len(names) >= SHARE_NAMES_AT:
            _remember_region(digest, data[run_start:run_end], tuple(names))
    elif runs > 1:
        digest = b""
    size = run_end - run_start if digest else 0
    return Request(type_url, version, tuple(names), nonce, error, node, digest, reused, size)


def _map_entry(data: bytes) -> tuple[str, str]:
    key = val = ""
    for number, value in fields(data):
        if number == 1:
            key = _text(value)
        elif number == 2:
            val = _text(value)
    return key, val


def parse_delta_request(data: bytes, want_node: bool = False) -> DeltaRequest:
    """Parse a DeltaDiscoveryRequest: node 1, type_url 2, subscribe 3, unsubscribe 4,
    initial_resource_versions 5, nonce 6, error_detail 7."""
    type_url, nonce = "", ""
    sub: list[str] = []
    unsub: list[str] = []
    initial: dict[str, str] = {}
    error: ErrorDetail | None = None
    node: str | None = None
    for number, value in fields(data):
        if number == 1:
            if want_node and isinstance(value, bytes):
                node = node_id(value)
        elif number == 2:
            type_url = _text(value)
        elif number == 3:
            sub.append(_text(value))
            _too_many(sub)
        elif number == 4:
            unsub.append(_text(value))
            _too_many(unsub)
        elif number == 5 and isinstance(value, bytes):
            k, v = _map_entry(value)
            initial[k] = v
        elif number == 6:
            nonce = _text(value)
        elif number == 7 and isinstance(value, bytes):
            error = _status(value)
    return DeltaRequest(type_url, tuple(sub), tuple(unsub), initial, nonce, error, node)


_CONTROL_PLANE = length_delimited(1, CONTROL_PLANE_ID.encode())


_CONTROL_PLANE_FIELD = length_delimited(6, _CONTROL_PLANE)


def sotw_response(type_url: str, version: str, anys: Iterable[bytes], nonce: str) -> bytes:
    """DiscoveryResponse: version_info 1, resources 2 (Any), type_url 4, nonce 5, control_plane 6."""
    return sotw_response_framed(type_url, version, [length_delimited(2, a) for a in anys], nonce)


def sotw_response_framed(type_url: str, version: str, resources: Iterable[bytes | memoryview], nonce: str) -> bytes:
    """The same, with the resources already framed as field 2 (``xds.framing``: shared across streams)."""
    head = length_delimited(1, version.encode())
    tail = length_delimited(4, type_url.encode()) + length_delimited(5, nonce.encode()) + _CONTROL_PLANE_FIELD
    return b"".join([head, *resources, tail])


def delta_resource(name: str, version: str, any_bytes: bytes) -> bytes:
    """discovery.v3.Resource: version 1, resource 2 (Any), name 3."""
    return length_delimited(1, version.encode()) + length_delimited(2, any_bytes) + length_delimited(3, name.encode())


def delta_response(
    type_url: str,
    system_version: str,
    resources: Iterable[tuple[str, str, bytes]],
    removed: Iterable[str],
    nonce: str,
) -> bytes:
    """DeltaDiscoveryResponse: system_version_info 1, resources 2, type_url 4, nonce 5, removed 6, control_plane 7.

    ``resources`` are (name, version, Any bytes).
    """
    parts = [length_delimited(1, system_version.encode())]
    parts.extend(length_delimited(2, delta_resource(n, v, a)) for n, v, a in resources)
    parts.append(length_delimited(4, type_url.encode()))
    parts.append(length_delimited(5, nonce.encode()))
    parts.extend(length_delimited(6, n.encode()) for n in removed)
    parts.append(length_delimited(7, _CONTROL_PLANE))
    return b"".join(parts)
