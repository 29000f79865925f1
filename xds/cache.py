"""Snapshots keyed by node id, with a wakeup per stream and what each node acknowledged.

Replacing one node's snapshot wakes only that node's streams, and only if some type
version changed. The cache holds the ``Snapshot`` objects the translator built, so a
resource shared by many nodes is one ``Entry`` (one encoded byte string) for all of them.
Everything here runs on the server's event loop; no locks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshxds.snapshots.snapshot import SHORT_NAMES, TYPE_ORDER, Snapshot


class Waker(Protocol):
    """What a stream registers to hear of its node's snapshot changes (the server's ``Wakeup``)."""

    def set(self) -> None: ...


@dataclass
class TypeStatus:
    """What one node was sent and answered for one type (the latest event of any of its streams)."""

    sent_version: str = ""
    sent_nonce: str = ""
    sent_at: float = 0.0
    acked_version: str = ""
    acked_at: float = 0.0
    answered_nonce: str = ""  # the latest nonce Envoy ACKed or NACKed
    responses: int = 0
    acks: int = 0
    nacks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent_version,
            "sentNonce": self.sent_nonce,
            "acked": self.acked_version,
            "pending": self.sent_nonce not in ("", self.answered_nonce),
            "responses": self.responses,
            "acks": self.acks,
            "nacks": self.nacks,
        }


@dataclass
class Nack:
    type_url: str
    version: str
    nonce: str
    message: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "type": SHORT_NAMES.get(self.type_url, self.type_url),
            "version": self.version,
            "nonce": self.nonce,
            "message": self.message,
            "at": self.at,
        }


@dataclass
class NodeStatus:
    """Connection and ACK/NACK state of one node, for the debug endpoint and MeshService status."""

    node_id: str
    streams: int = 0
    protocol: str = ""
    connected_at: float = 0.0
    disconnected_at: float = 0.0
    types: dict[str, TypeStatus] = field(default_factory=dict)
    last_nack: Nack | None = None
    nacks: int = 0
    stale_requests: int = 0

    def type(self, type_url: str) -> TypeStatus:
        found = self.types.get(type_url)  # (setdefault would build a TypeStatus on every call)
        if found is None:
            found = self.types[type_url] = TypeStatus()
        return found

    def to_json(self, snapshot: Snapshot | None) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "connected": self.streams > 0,
            "streams": self.streams,
            "protocol": self.protocol,
            "snapshot": snapshot.version if snapshot else None,
            "versions": {SHORT_NAMES[t]: v for t, v in snapshot.versions.items()} if snapshot else {},
            "types": {SHORT_NAMES.get(t, t): self.types[t].to_json() for t in TYPE_ORDER if t in self.types},
            "nacks": self.nacks,
            "lastNack": self.last_nack.to_json() if self.last_nack else None,
            "staleRequests": self.stale_requests,
        }


class SnapshotCache:
    """node id → Snapshot, plus per-node stream wakeups and status."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._wakeups: dict[str, set[Waker]] = {}
        self.status: dict[str, NodeStatus] = {}

    # -- snapshots -------------------------------------------------------------------------------
    def get(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    def nodes(self) -> list[str]:
        return sorted(self._snapshots)

    def set(self, node_id: str, snapshot: Snapshot) -> bool:
        """Store ``snapshot``; wake the node's streams iff a type version changed. Returns whether it changed."""
        old = self._snapshots.get(node_id)
        if old is not None and dict(old.versions) == dict(snapshot.versions):
            return False
        self._snapshots[node_id] = snapshot
        self._wake(node_id)
        return True

    def remove(self, node_id: str) -> bool:
        """Forget a node; its streams wake up, find no snapshot and end with NOT_FOUND."""
        if self._snapshots.pop(node_id, None) is None:
            return False
        self._wake(node_id)
        return True

    def replace_all(self, snapshots: Mapping[str, Snapshot]) -> list[str]:
        """Make the cache hold exactly ``snapshots``; returns the node ids whose snapshot changed or went away."""
        changed = [n for n, s in snapshots.items() if self.set(n, s)]
        changed += [n for n in list(self._snapshots) if n not in snapshots and self.remove(n)]
        return sorted(changed)

    def _wake(self, node_id: str) -> None:
        for waker in self._wakeups.get(node_id, ()):
            waker.set()

    # -- streams ---------------------------------------------------------------------------------
    def connect(self, node_id: str, protocol: str, waker: Waker) -> None:
        """Register a stream of ``node_id``; ``waker.set()`` is called whenever its snapshot changes."""
        self._wakeups.setdefault(node_id, set()).add(waker)
        st = self.status.setdefault(node_id, NodeStatus(node_id))
        st.streams += 1
        st.protocol = protocol
        st.connected_at = time.time()

    def disconnect(self, node_id: str, waker: Waker) -> None:
        events = self._wakeups.get(node_id)
        if events is not None:
            events.discard(waker)
            if not events:
                del self._wakeups[node_id]
        st = self.status.get(node_id)
        if st is None:
            return
        st.streams = max(0, st.streams - 1)
        if st.streams == 0:
            st.disconnected_at = time.time()

    def connected(self) -> frozenset[str]:
        return frozenset(n for n, st in self.status.items() if st.streams > 0)

    def node_status(self, node_id: str) -> NodeStatus:
        return self.status.setdefault(node_id, NodeStatus(node_id))

    def debug_json(self) -> dict[str, Any]:
        """Every known node (with a snapshot or a past connection): versions, ACKs, last NACK, connected."""
        ids = sorted(set(self._snapshots) | set(self.status))
        return {"nodes": [self.node_status(n).to_json(self._snapshots.get(n)) for n in ids]}
