"""The push fast paths (skipping unchanged types, shared map diffs, cheap ACKs) send exactly what a full scan would."""

from __future__ import annotations

import time

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, Layered, Snapshot
from meshxds.xds.cache import NodeStatus
from meshxds.xds.diff import changed_names
from meshxds.xds.sotw import SotwStream
from meshxds.xds.wire import fields, parse_request
from tests.support import xdsres as r
from tests.support.discovery import DiscoveryRequest, DiscoveryResponse

NODE = "default.web-1"


def base(*extra: r.Entry) -> Snapshot:
    return r.two_clusters(NODE, r.cluster("c"), r.cla("c", r.UPSTREAM), *extra)


def ask(stream: SotwStream, type_url: str, names: list[str], nonce: str = "") -> None:
    stream.handle(
        bytes(DiscoveryRequest(type_url=type_url, resource_names=names, response_nonce=nonce)), time.monotonic()
    )


def sent(out: list[bytes]) -> list[tuple[str, list[str], str]]:
    """(type, resource names, nonce) of each response, names read from the encoded resources."""
    result = []
    for data in out:
        msg = DiscoveryResponse.parse(data)
        # field 1 is the name of a Cluster, ClusterLoadAssignment, Listener and RouteConfiguration
        names = [next(bytes(v).decode() for n, v in fields(a.value) if n == 1) for a in msg.resources]
        result.append((msg.type_url, names, msg.nonce))
    return result


def synced(snap: Snapshot, eds_names: list[str]) -> SotwStream:
    """A stream that holds and ACKed CDS, EDS ``eds_names`` and LDS of ``snap``."""
    stream = SotwStream(NODE, NodeStatus(NODE))
    for type_url, names in ((CLUSTER, []), (ENDPOINT, eds_names), (LISTENER, [])):
        ask(stream, type_url, names)
        for t, _, nonce in sent(stream.responses(snap, time.monotonic())):
            ask(stream, t, eds_names if t == ENDPOINT else [], nonce)
    assert stream.responses(snap, time.monotonic()) == []
    return stream


def test_an_endpoint_change_sends_only_that_cla_and_a_repeated_ack_changes_nothing() -> None:
    stream = synced(base(), ["a", "b", "c"])
    changed = r.replace(base(), r.cla("b", ("127.0.0.9", 9)))
    out = sent(stream.responses(changed, time.monotonic()))
    assert [(t, names) for t, names, _ in out] == [(ENDPOINT, ["b"])]
    ask(stream, ENDPOINT, ["a", "b", "c"], out[0][2])  # the ACK repeats the subscription byte for byte
    assert stream.types[ENDPOINT].sub.names == {"a", "b", "c"}
    assert stream.responses(changed, time.monotonic()) == []


def test_a_change_outside_the_subscription_sends_nothing_and_a_new_name_is_still_answered() -> None:
    snap = base(r.cla("d", r.UPSTREAM))  # a CLA no cluster uses: Envoy asks for it only if it wants to
    stream = synced(snap, ["a", "b", "c"])
    changed = r.replace(snap, r.cla("d", ("127.0.0.9", 9)))
    assert stream.responses(changed, time.monotonic()) == []
    ask(
        stream, ENDPOINT, ["a", "b", "c", "d"], stream.types[ENDPOINT].ledger.nonce
    )  # subscribes to d: must be answered
    out = sent(stream.responses(changed, time.monotonic()))
    assert [(t, names) for t, names, _ in out] == [(ENDPOINT, ["d"])]
    again = r.replace(changed, r.cla("a", ("127.0.0.7", 7)), r.cla("d", ("127.0.0.8", 8)))
    out = sent(stream.responses(again, time.monotonic()))
    assert [(t, names) for t, names, _ in out] == [(ENDPOINT, ["a", "d"])]


def test_changed_names_are_diffed_once_per_map_pair_and_per_layer() -> None:
    old, new = base(), r.replace(base(), r.cla("b", ("127.0.0.9", 9)), r.cla("d", r.UPSTREAM))
    first = changed_names(old.get(ENDPOINT), new.get(ENDPOINT))
    assert first == {"b", "d"}
    assert changed_names(old.get(ENDPOINT), new.get(ENDPOINT)) is first  # shared by every stream
    own_old, own_new = {"x": r.cla("x", r.UPSTREAM)}, {"x": r.cla("x", ("127.0.0.2", 2))}
    layered = changed_names(Layered(own_old, old.get(ENDPOINT)), Layered(own_new, new.get(ENDPOINT)))
    assert layered == {"x", "b", "d"}


def test_a_names_region_is_reused_only_when_byte_identical() -> None:
    first = parse_request(bytes(DiscoveryRequest(type_url=ENDPOINT, resource_names=["a", "b"], response_nonce="1")))
    known = [(first.names_digest, first.names_size)]
    ack = parse_request(
        bytes(DiscoveryRequest(type_url=ENDPOINT, resource_names=["a", "b"], response_nonce="2")), known=known
    )
    assert (ack.names_reused, ack.resource_names, ack.response_nonce, ack.type_url) == (True, (), "2", ENDPOINT)
    more = parse_request(bytes(DiscoveryRequest(type_url=ENDPOINT, resource_names=["a", "b", "c"])), known=known)
    assert (more.names_reused, more.resource_names) == (False, ("a", "b", "c"))
    other = parse_request(bytes(DiscoveryRequest(type_url=ENDPOINT, resource_names=["a", "x"])), known=known)
    assert (other.names_reused, other.resource_names) == (False, ("a", "x"))
