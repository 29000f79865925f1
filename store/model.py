"""What every store holds and promises: records keyed by (type, mesh, name), versions, typed errors.

Kuma's ``resources`` table is the model (pkg/plugins/resources/postgres/pgx_store.go): one row per
resource with a JSON spec, labels, status, an integer version for compare-and-swap and real creation
and modification times. Global-scoped types (Mesh, HostnameGenerator, ZoneIngress) have mesh ``''``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshxds.resources.loader import GLOBAL_KINDS

# Kuma's API paths (WsPath) for the types meshxds knows, and back.
PLURALS: dict[str, str] = {
    "Mesh": "meshes",
    "Dataplane": "dataplanes",
    "MeshService": "meshservices",
    "MeshMultiZoneService": "meshmultizoneservices",
    "HostnameGenerator": "hostnamegenerators",
    "ZoneIngress": "zoneingresses",
    # Policies (zz_generated.resource.go WsPath of each)
    "MeshHTTPRoute": "meshhttproutes",
    "MeshTCPRoute": "meshtcproutes",
    "MeshTimeout": "meshtimeouts",
    "MeshRetry": "meshretries",
    "MeshCircuitBreaker": "meshcircuitbreakers",
    "MeshHealthCheck": "meshhealthchecks",
    "MeshLoadBalancingStrategy": "meshloadbalancingstrategies",
}
KINDS_BY_PLURAL: dict[str, str] = {plural: kind for kind, plural in PLURALS.items()}
# Universal Mesh, Dataplane and ZoneIngress are "old-style" (proto) types: the API flattens their spec.
FLAT_KINDS = frozenset({"Mesh", "Dataplane", "ZoneIngress"})


def is_global(kind: str) -> bool:
    return kind in GLOBAL_KINDS


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, order=True)
class Key:
    """A resource's identity; ``mesh`` is ``''`` for global-scoped types (Kuma's convention)."""

    type: str
    mesh: str
    name: str

    def __str__(self) -> str:
        return f"{self.type} {self.name}" if not self.mesh else f"{self.type} {self.mesh}/{self.name}"


@dataclass(frozen=True)
class Record:
    """One stored resource. ``version`` starts at 0 on create and grows by one per update (pgx_store.go)."""

    key: Key
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    creation_time: datetime = field(default_factory=now)
    modification_time: datetime = field(default_factory=now)

    @property
    def type(self) -> str:
        return self.key.type

    @property
    def mesh(self) -> str:
        return self.key.mesh

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class Change:
    """A resource that was created, updated or deleted (Kuma's ResourceChangedEvent); ``key`` None = resync."""

    action: str  # INSERT | UPDATE | DELETE | RESYNC | STATE
    key: Key | None = None


class StoreError(Exception):
    """Base of the errors a store raises; the API maps each to Kuma's status code."""


class NotFound(StoreError):
    def __init__(self, key: Key) -> None:
        super().__init__(f"resource not found: type={key.type!r} name={key.name!r} mesh={key.mesh!r}")
        self.key = key


class AlreadyExists(StoreError):
    def __init__(self, key: Key) -> None:
        super().__init__(f"resource already exists: type={key.type!r} name={key.name!r} mesh={key.mesh!r}")
        self.key = key


class Conflict(StoreError):
    """The version given is not the stored one: someone else wrote in between (optimistic concurrency)."""

    def __init__(self, key: Key) -> None:
        super().__init__(f"resource conflict: type={key.type!r} name={key.name!r} mesh={key.mesh!r}")
        self.key = key


class MeshNotFound(StoreError):
    def __init__(self, mesh: str) -> None:
        super().__init__(f"mesh of name {mesh} is not found")
        self.mesh = mesh


class ReadOnly(StoreError):
    """Writes to a store whose source of truth is elsewhere (the folder)."""


class Store(abc.ABC):
    """The one interface the API, the control loop and the CLI see; folder and PostgreSQL implement it."""

    read_only: bool = False
    read_only_reason: str = ""
    description: str = ""

    @abc.abstractmethod
    async def get(self, key: Key) -> Record:
        """The record, or NotFound."""

    @abc.abstractmethod
    async def list(self, type: str | None = None, mesh: str | None = None) -> list[Record]:
        """Records of ``type`` (all types when None) in ``mesh`` (all meshes when None), oldest first."""

    @abc.abstractmethod
    async def create(self, record: Record) -> Record:
        """Insert with version 0; AlreadyExists, or MeshNotFound when the owning Mesh is missing."""

    @abc.abstractmethod
    async def update(self, record: Record) -> Record:
        """Compare-and-swap on ``record.version`` (the version read); Conflict when it moved on."""

    @abc.abstractmethod
    async def delete(self, key: Key) -> None:
        """Delete (a Mesh takes everything in it along); NotFound when absent."""

    @abc.abstractmethod
    async def get_state(self, name: str) -> dict[str, Any] | None:
        """Control-plane state that must survive restarts (VIPs, generated MeshServices, admin token)."""

    @abc.abstractmethod
    async def put_state(self, name: str, value: dict[str, Any]) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections; the default has none."""
