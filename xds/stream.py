"""What both ADS flavours share: per-type client state, nonces, and push sequencing.

A stream is a synchronous state machine: ``handle(request)`` updates it, ``responses(now)``
returns the encoded responses to write now, in order. The gRPC layer (``server.py``) only
moves bytes. Sequencing rules, per push (xds_protocol "eventual consistency"):

1. CDS first, then EDS, LDS, RDS (TYPE_ORDER).
2. A Cluster sent as added or changed is followed by a fresh ClusterLoadAssignment
   (no warming stall): its EDS name is forced into the next EDS response.
3. LDS/RDS wait until Envoy accepted the CDS response before them and every EDS cluster just
   added or changed got its CLA (Envoy asks for a new cluster's CLA only after applying CDS),
   so no route points at a warming or missing cluster; while Envoy's rejection of clusters still
   in the snapshot stands, they wait too (Envoy keeps its last consistent config).
4. Cluster removals are held back until EDS, LDS and RDS are settled (nothing left to send,
   every response answered), so listeners stop using a cluster before it disappears.
Gates 3 and 4 give up after ``GATE_TIMEOUT`` seconds so one stuck type never blocks the rest.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, SHORT_NAMES, TYPE_ORDER, Entry, Snapshot
from meshxds.xds.cache import Nack, NodeStatus
from meshxds.xds.diff import changed_names

log = logging.getLogger("meshxds.xds")

# Unique per server process, so a nonce from an older stream or an earlier server can never match.
PROCESS_ID = uuid.uuid4().hex[:12]
_STREAM_IDS = itertools.count(1)

WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})
GATE_TIMEOUT = 1.0
REMOVED = ""  # in TypeState.nacked: Envoy rejected a response that removed this name


def one_line(message: str, limit: int = 400) -> str:
    """Envoy's NACK text embeds a multi-line proto dump; logs get the reason on one line."""
    text = " ".join(message.replace("goo.gle/debugproto", "").replace("goo.gle/debugonly", "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ProtocolError(ValueError):
    """A request that breaks the ADS protocol (the stream ends with INVALID_ARGUMENT)."""


class NodeGone(Exception):
    """The node's snapshot was removed (its Dataplane left the input)."""


@dataclass
class TypeState:
    """One type URL on one stream: subscription and what the client is believed to hold."""

    type_url: str
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    requested: bool = False
    must_respond: bool = False
    # What Envoy holds: ``confirmed`` by its ACKs, plus the ``pending`` responses (nonce -> name ->
    # version, None = removed) it has not answered yet; ``client`` is confirmed + pending, in order.
    # Envoy applies and answers responses in order, so an ACK moves a response into ``confirmed``
    # and a NACK drops it: exact, even with several responses in flight.
    client: dict[str, str] = field(default_factory=dict)
    confirmed: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict[str, str | None]] = field(default_factory=dict)
    full_state: bool = False  # SotW CDS/LDS: a response replaces everything (pending holds whole states)
    force: set[str] = field(default_factory=set)  # names to send even if unchanged
    rejected: list[dict[str, str | None]] = field(default_factory=list)  # NACKed responses' changes
    nacked: dict[str, str] = field(default_factory=dict)  # name -> version not to send again (see responses)
    sent_versions: dict[str, str] = field(default_factory=dict)  # nonce -> version, for NACK reports
    nonce: str = ""
    # Work skipped while nothing changed (see ``Stream.responses``): the (type version, hold_removals)
    # at which the last build left this type up to date and the map it was built from, plus memos of
    # ``_dirty``/``has_held_removals`` per type version. ``touch`` drops them when the state changes.
    clean: tuple[str, bool] | None = None
    clean_map: Mapping[str, Entry] | None = None
    changed: frozenset[str] | None = None  # for this build: the only names that may need sending
    dirty_at: tuple[str, bool] | None = None
    held_at: tuple[str, bool] | None = None

    def touch(self) -> None:
        """The client state or subscription changed: the next push evaluates this type in full."""
        self.clean = self.clean_map = self.dirty_at = self.held_at = None

    @property
    def watched(self) -> bool:
        return self.requested and (self.wildcard or bool(self.names))

    def wants(self, name: str) -> bool:
        return self.wildcard or name in self.names


class Stream:
    """Base for SotW and Delta streams of one node."""

    protocol = ""

    def __init__(self, node_id: str, status: NodeStatus) -> None:
        self.node_id = node_id
        self.status = status
        self.stream_id = next(_STREAM_IDS)
        self._counter = itertools.count(1)
        self.types: dict[str, TypeState] = {}
        # CLA name -> (cluster, deadline): clusters sent as added/changed whose fresh CLA is not sent yet.
        self.eds_wait: dict[str, tuple[str, float]] = {}
        self.held_since: float | None = None
        self.rewarm: set[str] = set()  # clusters that need a fresh CLA again (see record_nack)
        self.cds_sent_at = 0.0
        self.sent = 0

    # -- helpers for subclasses ------------------------------------------------------------------
    def next_nonce(self) -> str:
        return f"{PROCESS_ID}-{self.stream_id}-{next(self._counter)}"

    def state(self, type_url: str) -> TypeState:
        st = self.types.get(type_url)
        if st is None:
            st = self.types[type_url] = TypeState(type_url)
        return st

    def record_sent(self, st: TypeState, version: str, changed: list[str]) -> str:
        """Register a response that set ``changed`` names to their ``st.client`` versions; returns its nonce."""
        nonce = self.next_nonce()
        st.nonce = nonce
        st.touch()
        # Full state: share the (never mutated, only replaced) client map instead of copying it.
        st.pending[nonce] = st.client if st.full_state else {name: st.client.get(name) for name in changed}  # type: ignore[assignment]
        st.sent_versions[nonce] = version
        if len(st.sent_versions) > 64:
            st.sent_versions.pop(next(iter(st.sent_versions)))
        ts = self.status.type(st.type_url)
        ts.sent_version, ts.sent_nonce, ts.sent_at = version, nonce, time.time()
        ts.responses += 1
        self.sent += 1
        return nonce

    def record_ack(self, st: TypeState, nonce: str) -> bool:
        """Envoy applied response ``nonce``; False if it is not one we are waiting for."""
        changes = st.pending.pop(nonce, None)
        if changes is None:
            return False
        if st.full_state:
            st.confirmed = changes  # type: ignore[assignment]  # a whole state, shared, never mutated
            changes = {}
        for name, version in changes.items():
            if version is None:
                st.confirmed.pop(name, None)
            else:
                st.confirmed[name] = version
        ts = self.status.type(st.type_url)
        ts.acked_version, ts.acked_at, ts.answered_nonce = st.sent_versions.get(nonce, ""), time.time(), nonce
        ts.acks += 1
        return True

    def record_nack(self, st: TypeState, nonce: str, message: str) -> None:
        """Envoy rejected response ``nonce`` (applied none of it): forget it, remember what was rejected, log."""
        changes = st.pending.pop(nonce, None) or {}
        st.touch()
        if st.full_state and changes:
            st.client = list(st.pending.values())[-1] if st.pending else st.confirmed  # type: ignore[assignment]
        for name in changes if not st.full_state else ():
            now_held = next((c[name] for c in reversed(st.pending.values()) if name in c), st.confirmed.get(name))
            if now_held is None or not st.wants(name):
                st.client.pop(name, None)
            else:
                st.client[name] = now_held
        # Envoy accepted the confirmed versions before, so the culprit is among the others.
        suspects = {n: v for n, v in changes.items() if v is None or st.confirmed.get(n) != v}
        if suspects:
            st.rejected.append(suspects)
            st.nacked.update((name, version or REMOVED) for name, version in suspects.items())
        version = st.sent_versions.get(nonce, "")
        ts = self.status.type(st.type_url)
        ts.answered_nonce = nonce
        ts.nacks += 1
        self.status.nacks += 1
        self.status.last_nack = Nack(st.type_url, version, nonce, message, time.time())
        if st.type_url == CLUSTER:
            # A cluster change a later response still carries will warm only once that one is applied;
            # the fresh CLA sent after the rejected response came too early for it.
            self.rewarm.update(n for n in changes if st.client.get(n) not in (None, st.confirmed.get(n)))
        log.warning(
            "%s NACKed %s version %s (nonce %s): %s",
            self.node_id,
            SHORT_NAMES.get(st.type_url, st.type_url),
            version,
            nonce,
            one_line(message),
        )

    def after_clusters_sent(self, snap: Snapshot, changed: list[str], now: float) -> None:
        """Rule 2 and 3: every added/changed EDS cluster needs a fresh CLA before LDS/RDS move on."""
        self.cds_sent_at = now
        claims = snap.get(ENDPOINT)
        eds = self.types.get(ENDPOINT)
        clusters = snap.get(CLUSTER)
        for name in changed:
            entry = clusters.get(name)
            target = entry.eds_service if entry is not None else None
            if target is None or target not in claims:
                continue
            self.eds_wait[target] = (name, now + GATE_TIMEOUT)
            if eds is not None and target in eds.names:
                eds.force.add(target)
                eds.touch()

    def after_endpoints_sent(self, names: list[str]) -> None:
        for name in names:
            self.eds_wait.pop(name, None)

    # -- sequencing ------------------------------------------------------------------------------
    def _eds_blocked(self, snap: Snapshot, now: float) -> bool:
        """Whether LDS/RDS must still wait for a CLA that Envoy needs and the snapshot has.

        A wait ends when the CLA is sent, its cluster leaves what Envoy holds (rejected or
        removed), or after ``GATE_TIMEOUT``; a wait whose CLA the snapshot lacks does not block.
        """
        if not self.eds_wait:
            return False
        cds = self.types.get(CLUSTER)
        held = cds.client if cds is not None else {}
        for name, (cluster, deadline) in list(self.eds_wait.items()):
            if cluster not in held:
                del self.eds_wait[name]
            elif deadline <= now:
                log.info("%s: gave up waiting for Envoy to request CLA %r", self.node_id, name)
                del self.eds_wait[name]
        claims = snap.get(ENDPOINT)
        return any(name in claims for name in self.eds_wait)

    def _listeners_wait(self, snap: Snapshot, now: float) -> bool:
        """LDS/RDS go only once the clusters they may use are in place: no CDS response in flight
        (it might be rejected), every new cluster's CLA sent, and no rejected cluster still in the
        snapshot (Envoy keeps its last consistent config until the snapshot changes those)."""
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.rejected:
            return True
        if cds is not None and cds.pending and now - self.cds_sent_at < GATE_TIMEOUT:
            return True
        return self._eds_blocked(snap, now)

    def _may_remove_clusters(self, snap: Snapshot, now: float) -> bool:
        """Rule 4: listeners and routes are up to date (nothing left to send, all answered)."""
        return self._settled(snap, now) and not any(self._dirty(t, snap) for t in (LISTENER, ROUTE))

    def _settled(self, snap: Snapshot, now: float) -> bool:
        if self._eds_blocked(snap, now):
            return False
        return all(not self.types[t].pending for t in (ENDPOINT, LISTENER, ROUTE) if t in self.types)

    def responses(self, snap: Snapshot | None, now: float) -> list[bytes]:
        """Everything to send now, in order (see the module docstring)."""
        if snap is None:
            raise NodeGone(self.node_id)
        out: list[bytes] = []
        if self.rewarm:
            self.after_clusters_sent(snap, sorted(self.rewarm), now)
            self.rewarm.clear()
        hold = not self._may_remove_clusters(snap, now)
        for t in TYPE_ORDER:
            st = self.types.get(t)
            if st is None or not st.requested:
                continue
            if st.rejected:
                self._forget_fixed_rejections(st, snap)
            if t in (LISTENER, ROUTE) and self._listeners_wait(snap, now):
                continue
            msg = self._build_if_changed(st, snap, now, hold and t == CLUSTER)
            if msg is not None:
                out.append(msg)
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.requested and self._held(cds, snap):
            if self.held_since is None:
                self.held_since = now
            if self._may_remove_clusters(snap, now) or now - self.held_since >= GATE_TIMEOUT:
                msg = self._build_if_changed(cds, snap, now, False)
                if msg is not None:
                    out.append(msg)
                self.held_since = None
        else:
            self.held_since = None
        return out

    def _build_if_changed(self, st: TypeState, snap: Snapshot, now: float, hold: bool) -> bytes | None:
        """``build``, skipped in O(1) when neither the type's snapshot content nor the stream's state
        for it changed since a build left it up to date; after a snapshot change only, ``st.changed``
        tells the build which names can differ (diffed once per pair of maps, shared by all streams)."""
        version = snap.versions.get(st.type_url, "")
        key = (version, hold)
        if st.clean == key:
            return None
        present = snap.get(st.type_url)
        if st.clean is not None and st.clean_map is not None and st.clean[1] == hold and not st.must_respond:
            st.changed = changed_names(st.clean_map, present)
        msg = self.build(st, snap, now, hold_removals=hold)
        st.changed = None
        # Every build leaves the type up to date with the snapshot (or with what it may send now).
        st.clean, st.clean_map = key, present
        return msg

    @staticmethod
    def _forget_fixed_rejections(st: TypeState, snap: Snapshot) -> None:
        """Keep blocking a rejected response's content only while the snapshot still holds all of it.

        Envoy does not say which resource was bad. While every resource of a rejected response is
        unchanged, sending any of it again would be rejected again; once one changed or went away
        (the culprit may be fixed), the others, good ones that came with it included, may go again.
        """
        present = snap.get(st.type_url)

        def intact(changes: dict[str, str | None]) -> bool:
            return all(
                (name not in present) if version is None else (name in present and present[name].version == version)
                for name, version in changes.items()
            )

        kept = [changes for changes in st.rejected if intact(changes)]
        if len(kept) != len(st.rejected):
            st.rejected = kept
            st.nacked = {n: v or REMOVED for changes in st.rejected for n, v in changes.items()}
            st.touch()

    def _held(self, cds: TypeState, snap: Snapshot) -> bool:
        """``has_held_removals``, remembered per CDS version until the client state changes."""
        version = snap.versions.get(CLUSTER, "")
        if cds.held_at is None or cds.held_at[0] != version:
            cds.held_at = (version, self.has_held_removals(cds, snap))
        return cds.held_at[1]

    def _dirty(self, type_url: str, snap: Snapshot) -> bool:
        """Whether a push of a watched type is coming (Envoy holds something else; rejected versions excluded)."""
        st = self.types.get(type_url)
        if st is None or not st.watched:
            return False
        version = snap.versions.get(type_url, "")
        if st.dirty_at is not None and st.dirty_at[0] == version:
            return st.dirty_at[1]
        present = snap.get(type_url)
        dirty = (type_url in WILDCARD_TYPES and any(n not in present for n in st.client)) or any(
            e.version not in (st.client.get(n), st.nacked.get(n)) for n, e in present.items() if st.wants(n)
        )
        st.dirty_at = (version, dirty)
        return dirty

    def deadline(self) -> float | None:
        """When ``responses`` must run again even without a request or snapshot change.

        Only gates that have not yet given up count: an expired gate stays open, so returning its
        (past) deadline would make the stream spin until the next request.
        """
        times = [deadline for _, deadline in self.eds_wait.values()]
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.pending:
            times.append(self.cds_sent_at + GATE_TIMEOUT)
        if self.held_since is not None:
            times.append(self.held_since + GATE_TIMEOUT)
        now = time.monotonic()
        future = [t for t in times if t > now]
        return min(future) if future else None

    # -- per flavour -----------------------------------------------------------------------------
    def handle(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def build(self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool) -> bytes | None:
        raise NotImplementedError

    def has_held_removals(self, st: TypeState, snap: Snapshot) -> bool:
        present = snap.get(st.type_url)
        return any(name not in present for name in st.client)
