"""Hand framing and the field-skipping parser agree with envoy-data-plane's own encoding."""

from __future__ import annotations

import pytest

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT
from meshxds.xds.wire import WireError, delta_response, parse_delta_request, parse_request, sotw_response
from tests.support import xdsres as r
from tests.support.discovery import (
    Any,
    ControlPlane,
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
    Node,
    Resource,
    Status,
    Struct,
)


def test_sotw_response_is_byte_identical_to_the_library_encoding() -> None:
    entries = [r.cluster("a"), r.cluster("b", 2.0)]
    ours = sotw_response(CLUSTER, "v1", (e.any for e in entries), "n-1")
    theirs = DiscoveryResponse(
        version_info="v1",
        resources=[Any(type_url=CLUSTER, value=e.value) for e in entries],
        type_url=CLUSTER,
        nonce="n-1",
        control_plane=ControlPlane(identifier="meshxds"),
    )
    assert ours == bytes(theirs)


def test_delta_response_is_byte_identical_to_the_library_encoding() -> None:
    e = r.cla("a", ("127.0.0.1", 80))
    ours = delta_response(ENDPOINT, "sys", [(e.name, e.version, e.any)], ["gone", "old"], "n-2")
    parsed = DeltaDiscoveryResponse.parse(ours)
    assert parsed.resources == [Resource(name="a", version=e.version, resource=Any(type_url=ENDPOINT, value=e.value))]
    assert parsed.removed_resources == ["gone", "old"]
    assert (parsed.type_url, parsed.nonce, parsed.system_version_info) == (ENDPOINT, "n-2", "sys")
    assert parsed.control_plane == ControlPlane(identifier="meshxds")


def big_node(node_id: str) -> Node:
    return Node(id=node_id, cluster="c", metadata=Struct.from_dict({f"k{i}": "v" * 50 for i in range(200)}))


def test_sotw_request_parser_reads_every_field_and_node_id_only_on_demand() -> None:
    req = DiscoveryRequest(
        version_info="v0",
        node=big_node("default.web-1"),
        resource_names=["a", "b"],
        type_url=ENDPOINT,
        response_nonce="n-9",
        error_detail=Status(code=3, message="bad cluster"),
    )
    parsed = parse_request(bytes(req), want_node=True)
    assert parsed.node_id == "default.web-1"
    assert parsed.resource_names == ("a", "b")
    assert (parsed.type_url, parsed.version_info, parsed.response_nonce) == (ENDPOINT, "v0", "n-9")
    assert parsed.error is not None and (parsed.error.code, parsed.error.message) == (3, "bad cluster")
    assert parse_request(bytes(req)).node_id is None


def test_delta_request_parser_reads_maps_and_lists() -> None:
    req = DeltaDiscoveryRequest(
        node=big_node("m.dp"),
        type_url=CLUSTER,
        resource_names_subscribe=["*", "x"],
        resource_names_unsubscribe=["y"],
        initial_resource_versions={"a": "1", "b": "2"},
        response_nonce="n",
    )
    parsed = parse_delta_request(bytes(req), want_node=True)
    assert parsed.node_id == "m.dp"
    assert parsed.subscribe == ("*", "x") and parsed.unsubscribe == ("y",)
    assert parsed.initial_versions == {"a": "1", "b": "2"}
    assert parsed.response_nonce == "n" and parsed.error is None


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x0a", b"\x0f\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"])
def test_malformed_requests_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        parse_request(data)
