"""What the translators need to know about a Dataplane: its inbound interfaces, protocols and zone.

Which Dataplanes a MeshService selector picks is ``resources.match`` (shared with the status updater).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from meshxds.resources.model import (
    PROTOCOL_TAG,
    ZONE_LABEL,
    ZONE_TAG,
    Dataplane,
    Inbound,
    InboundState,
)

# Kuma's ``ParseProtocol`` accepts these; anything else is "unknown" and treated as tcp.
KNOWN_PROTOCOLS = ("http", "http2", "tcp", "tls", "grpc", "kafka", "mysql")
HTTP_PROTOCOLS = ("http", "http2", "grpc")
# Protocol stacks for Kuma's ``GetCommonProtocol``: the common protocol is the deepest shared layer.
_STACKS = {
    "http": ("tcp", "http"),
    "http2": ("tcp", "http2"),
    "grpc": ("tcp", "http2", "grpc"),
    "kafka": ("tcp", "kafka"),
    "tcp": ("tcp",),
}
# Kuma's TCPPortReserved: an inbound on this port is "service-less" and gets no listener (IsServiceLess).
SERVICELESS_PORT = 49151


def parse_protocol(value: str | None) -> str:
    """Kuma's ``ParseProtocol``: lower-cased known protocol, else ``""`` (unknown)."""
    p = (value or "").lower()
    return p if p in KNOWN_PROTOCOLS else ""


def inbound_protocol(inbound: Inbound) -> str:
    """``GetProtocolFallback``: ``inbound.protocol``, else the ``kuma.io/protocol`` tag; tcp when unknown."""
    return parse_protocol(inbound.protocol or inbound.tags.get(PROTOCOL_TAG)) or "tcp"


def common_protocol(protocols: Iterable[str]) -> str:
    """Kuma's ``GetCommonProtocol`` folded over every endpoint: http+http2 → tcp, grpc+http2 → http2."""
    common: tuple[str, ...] | None = None
    for p in protocols:
        stack = _STACKS.get(p, ("tcp",))
        if common is None:
            common = stack
            continue
        n = 0
        while n < min(len(common), len(stack)) and common[n] == stack[n]:
            n += 1
        common = common[:n]
    return common[-1] if common else "tcp"


def inbound_zone(dp: Dataplane, inbound: Inbound) -> str | None:
    """The zone of an endpoint: the inbound's ``kuma.io/zone`` tag, else the Dataplane's label."""
    return inbound.tags.get(ZONE_TAG) or dp.labels.get(ZONE_LABEL) or None


def is_http(protocol: str) -> bool:
    return protocol in HTTP_PROTOCOLS


@dataclass(frozen=True, slots=True)
class InboundInterface:
    """Kuma's ``ToInboundInterface``: where the sidecar listens and where the app listens."""

    dataplane_ip: str
    dataplane_advertised_ip: str
    dataplane_port: int
    workload_ip: str
    workload_port: int


def interface(dp: Dataplane, inbound: Inbound) -> InboundInterface:
    """``ToInboundInterface``: the app is at serviceAddress, else at the inbound's own address (not localhost)."""
    net = dp.networking
    ip = inbound.address or net.address
    return InboundInterface(
        dataplane_ip=ip,
        dataplane_advertised_ip=net.advertised_address or ip,
        dataplane_port=inbound.port,
        workload_ip=inbound.service_address or ip,
        workload_port=inbound.workload_port,
    )


def overlap(a: str, b: str) -> bool:
    """Kuma's address overlap: equal, or either is unspecified (0.0.0.0 / ::)."""
    try:
        ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a == b
    return ia.is_unspecified or ib.is_unspecified or ia == ib


def exposed_inbounds(dp: Dataplane) -> list[Inbound]:
    """Inbounds that get a listener: every one but ``Ignored``."""
    return [i for i in dp.networking.inbound if i.state != InboundState.IGNORED]
