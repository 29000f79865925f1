"""Per-proxy snapshots: every resource encoded once, versioned by content.

The xDS server only ever reads ``Snapshot``: per type URL, a mapping from
resource name to ``Entry`` (encoded Any bytes plus a content version). It never
sees resource models or translators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

from meshxds.codec.encode import encode_any, encode_message

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"  # SDS over the same ADS stream

# Make-before-break order on one ADS stream; removals go in reverse. Secrets are requested by name once a
# cluster or listener refers to them, like EDS and RDS.
TYPE_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
SHORT_NAMES = {CLUSTER: "clusters", ENDPOINT: "endpoints", LISTENER: "listeners", ROUTE: "routes", SECRET: "secrets"}
EDS = 3  # envoy.config.cluster.v3.Cluster.DiscoveryType.EDS
V = TypeVar("V")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One Envoy resource, encoded once and shared by every snapshot and stream that serves it."""

    name: str
    type_url: str
    message: Any = field(repr=False, compare=False)
    value: bytes = field(repr=False)
    version: str
    any: bytes = field(repr=False)
    # For an EDS cluster: the ClusterLoadAssignment name Envoy will request (its eds_cluster_config
    # service_name, else the cluster name); None for every other resource. The server reads this,
    # never the message.
    eds_service: str | None = None

    @classmethod
    def of(cls, type_url: str, name: str, message: Any) -> Entry:
        value = encode_message(message)
        eds = eds_service_name(name, message) if type_url == CLUSTER else None
        return cls(name, type_url, message, value, digest(value), encode_any(type_url, value), eds)


def eds_service_name(name: str, cluster: Any) -> str | None:
    """The CLA name an EDS cluster asks for; None when the cluster is not EDS."""
    kind = getattr(cluster, "type", None)
    if kind is None or int(kind) != EDS:
        return None
    cfg = getattr(cluster, "eds_cluster_config", None)
    return str(getattr(cfg, "service_name", "") or "") or name


_NO_ENTRIES_VERSION = hashlib.blake2b(digest_size=8).hexdigest()


def type_version(entries: Mapping[str, Entry]) -> str:
    """A version for a whole type: changes iff any resource (or the set of names) changes."""
    if not entries:  # most layers hold a few of the five types (a proxy's secrets: one)
        return _NO_ENTRIES_VERSION
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(entries):
        h.update(name.encode())
        h.update(entries[name].version.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """What one proxy should hold, per type URL."""

    node_id: str
    resources: Mapping[str, Mapping[str, Entry]]
    versions: Mapping[str, str]

    @classmethod
    def of(cls, node_id: str, entries: Iterable[Entry]) -> Snapshot:
        by_type: dict[str, dict[str, Entry]] = {t: {} for t in TYPE_ORDER}
        for e in entries:
            if e.name in by_type[e.type_url]:
                raise ValueError(f"{node_id}: duplicate {SHORT_NAMES[e.type_url]} resource {e.name!r}")
            by_type[e.type_url][e.name] = e
        return cls(node_id, by_type, {t: type_version(r) for t, r in by_type.items()})

    @property
    def version(self) -> str:
        return digest("".join(self.versions[t] for t in TYPE_ORDER).encode())

    def get(self, type_url: str) -> Mapping[str, Entry]:
        return self.resources.get(type_url, {})


class Layered(Mapping[str, V]):
    """A proxy's own entries over shared mappings, without copying the shared ones (names never overlap).

    ``layers`` is public so the server can diff two such maps layer by layer (a shared layer is
    one object for every proxy that uses it); the server layers its version maps the same way.
    """

    __slots__ = ("layers",)

    def __init__(self, *maps: Mapping[str, V]) -> None:
        self.layers: tuple[Mapping[str, V], ...] = maps

    def __getitem__(self, name: str) -> V:
        for entries in self.layers:
            entry = entries.get(name)
            if entry is not None:
                return entry
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(name in entries for entries in self.layers)

    def __iter__(self) -> Iterator[str]:
        return chain(*self.layers)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self.layers)

    def __eq__(self, other: object) -> bool:
        """Equal at once when both stack the same layer objects; else compared item by item."""
        if (
            isinstance(other, Layered)
            and len(other.layers) == len(self.layers)
            and all(a is b for a, b in zip(self.layers, other.layers, strict=True))
        ):
            return True
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]
