"""What the translators need to know about a Dataplane: its inbound interfaces, protocols, zone,
and which Dataplanes a MeshService selector picks (Kuma's ``MatchDataplanesWithMeshServices``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from meshxds.resources.match import tags_match
from meshxds.resources.model import (
    PROTOCOL_TAG,
    ZONE_LABEL,
    ZONE_TAG,
    Dataplane,
    Inbound,
    InboundState,
    Selector,
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
        workload_port=inbound.service_port or inbound.port,
    )


def overlap(a: str, b: str) -> bool:
    """Kuma's address overlap: equal, or either is unspecified (0.0.0.0 / ::)."""
    try:
        ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a == b
    return ia.is_unspecified or ib.is_unspecified or ia == ib


def healthy_inbounds(dp: Dataplane) -> list[Inbound]:
    return [i for i in dp.networking.inbound if i.healthy]


def exposed_inbounds(dp: Dataplane) -> list[Inbound]:
    """Inbounds that get a listener: every one but ``Ignored``."""
    return [i for i in dp.networking.inbound if i.state != InboundState.IGNORED]


class DataplaneIndex:
    """Healthy Dataplanes of one mesh, indexed so selector matching costs per match, not per Dataplane."""

    def __init__(self, dataplanes: Iterable[Dataplane]) -> None:
        self.healthy: list[tuple[Dataplane, list[Inbound]]] = []
        self._by_tag: dict[tuple[str, str], list[tuple[int, Dataplane, Inbound]]] = defaultdict(list)
        self._by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._by_name: dict[str, int] = {}
        for dp in dataplanes:
            inbounds = healthy_inbounds(dp)
            if not inbounds:
                continue  # Kuma indexes Dataplanes by healthy inbounds only
            n = len(self.healthy)
            self.healthy.append((dp, inbounds))
            self._by_name[dp.name] = n
            for k, v in dp.labels.items():
                self._by_label[(k, v)].append(n)
            for inbound in inbounds:
                for k, v in inbound.tags.items():
                    self._by_tag[(k, v)].append((n, dp, inbound))

    def select(self, selector: Selector) -> list[tuple[Dataplane, list[Inbound]]]:
        """The matched Dataplanes, each with its healthy inbounds, in load order."""
        picked: set[int] = set()
        if selector.dataplane_ref is not None:
            n = self._by_name.get(selector.dataplane_ref.name)
            if n is not None:
                picked.add(n)
        elif selector.dataplane_labels is not None:
            wanted = selector.dataplane_labels.match_labels
            if not wanted:
                picked.update(range(len(self.healthy)))
            else:
                first, *rest = wanted.items()
                for n in self._by_label.get(first, []):
                    labels = self.healthy[n][0].labels
                    if all(labels.get(k) == v for k, v in rest):
                        picked.add(n)
        elif selector.dataplane_tags:  # an empty tag selector matches nothing
            tags = selector.dataplane_tags
            exact = [(k, v) for k, v in tags.items() if v != "*"]
            if exact:
                for n, _dp, inbound in self._by_tag.get(exact[0], []):
                    if n not in picked and tags_match(tags, inbound.tags):
                        picked.add(n)
            else:
                for n, (_dp, inbounds) in enumerate(self.healthy):
                    if any(tags_match(tags, i.tags) for i in inbounds):
                        picked.add(n)
        return [self.healthy[n] for n in sorted(picked)]
