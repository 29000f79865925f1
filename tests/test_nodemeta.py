"""Node metadata as Kuma reads it (pkg/core/xds/metadata.go ``DataplaneMetadataFromXdsMetadata``): the DNS port
comes from ``dataplane.dns.port``, a string value in kuma-dp's bootstrap (pkg/xds/bootstrap/template_v3.go)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from meshxds.codec.encode import encode_message
from meshxds.xds.nodemeta import dns_port, metadata_values

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from envoy_data_plane.envoy.config.core.v3 import Node
    from envoy_data_plane.google.protobuf import Struct


def node(metadata: dict[str, Any] | None) -> bytes:
    return encode_message(
        Node(id="default.web-1", metadata=Struct.from_dict(metadata) if metadata is not None else None)
    )


@pytest.mark.parametrize(
    ("metadata", "port"),
    [
        ({"dataplane.dns.port": "15054"}, 15054),  # what kuma-dp (and meshxds bootstrap) write
        ({"dataplane.dns.port": 15054}, 15054),  # a number value
        ({"dataplane.dns.port": "x"}, 0),
        ({"dataplane.dns.port": "70000"}, 0),
        ({"other": "1"}, 0),
        (None, 0),
    ],
)
def test_dns_port(metadata: dict[str, Any] | None, port: int) -> None:
    assert dns_port(node(metadata)) == port


def test_metadata_values_reads_scalars_and_skips_the_rest() -> None:
    values = metadata_values(node({"a": "text", "b": 2, "c": True, "d": {"nested": 1}, "e": [1]}))
    assert values == {"a": "text", "b": "2.0", "c": "true"}
