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

Per type a stream keeps what the client asked for (``subscription.Subscription``), what it holds
(``ledger.Ledger``: record-sent, ACK and NACK) and a push memo private to this module; the
flavours change the first two only through their methods.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, SHORT_NAMES, TYPE_ORDER, Entry, Snapshot
from meshxds.xds.cache import Nack, NodeStatus
from meshxds.xds.diff import changed_names, eds_targets, equal_versions, names_within, versions_of
from meshxds.xds.ledger import Ledger
from meshxds.xds.subscription import Subscription

log = logging.getLogger("meshxds.xds")

# Unique per server process, so a nonce from an older stream or an earlier server can never match.
PROCESS_ID = uuid.uuid4().hex[:12]
_STREAM_IDS = itertools.count(1)

WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})
GATE_TIMEOUT = 1.0


def one_line(message: str, limit: int = 400) -> str:
    """Envoy's NACK text embeds a multi-line proto dump; logs get the reason on one line."""
    text = " ".join(message.replace("goo.gle/debugproto", "").replace("goo.gle/debugonly", "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ProtocolError(ValueError):
    """A request that breaks the ADS protocol (the stream ends with INVALID_ARGUMENT)."""


class NodeGone(Exception):
    """The node's snapshot was removed (its Dataplane left the input)."""


@dataclass
class PushMemo:
    """Work skipped while nothing changed (see ``Stream.responses``), valid for one ``generations``
    of the subscription and ledger: the (type version, hold_removals) at which the last build left
    the type up to date and the map it was built from, plus ``_dirty``/``has_held_removals`` per
    type version."""

    generations: tuple[int, int] = (-1, -1)
    clean: tuple[str, bool] | None = None
    clean_map: Mapping[str, Entry] | None = None
    dirty_at: tuple[str, bool] | None = None
    held_at: tuple[str, bool] | None = None


class TypeState:
    """One type URL on one stream: what the client asked for (``sub``), what it holds (``ledger``),
    and the push memo, which only this module reads and writes."""

    __slots__ = ("_memo", "ledger", "sub", "type_url")

    def __init__(self, type_url: str, full_state: bool) -> None:
        self.type_url = type_url
        self.sub = Subscription()
        self.ledger = Ledger(full_state)
        self._memo = PushMemo()

    def memo(self) -> PushMemo:
        """The memo, emptied first if the subscription or the ledger changed since it was filled."""
        now = (self.sub.generation, self.ledger.generation)
        if self._memo.generations != now:
            self._memo = PushMemo(now)
        return self._memo


class Stream:
    """Base for SotW and Delta streams of one node."""

    protocol = ""
    full_state_types: frozenset[str] = frozenset()  # types whose every response is the whole state

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
        # _eds_blocked's last answer: (CDS ledger generation, CLA map, earliest deadline, blocked).
        self._eds_memo: tuple[int, Mapping[str, Entry], float, bool] | None = None
        self._eds_held_at = -1  # the CDS ledger generation at which every wait's cluster was held
        self._eds_earliest = float("inf")  # no later than the earliest wait's deadline
        # (snapshot, generations) of the last responses() call that had nothing to send and nothing waiting.
        self._idle: tuple[Snapshot, tuple[tuple[int, int], ...]] | None = None

    # -- helpers for subclasses ------------------------------------------------------------------
    def next_nonce(self) -> str:
        return f"{PROCESS_ID}-{self.stream_id}-{next(self._counter)}"

    def state(self, type_url: str) -> TypeState:
        st = self.types.get(type_url)
        if st is None:
            st = self.types[type_url] = TypeState(type_url, type_url in self.full_state_types)
        return st

    def record_sent(self, st: TypeState, version: str, changed: list[str], everything: bool = False) -> str:
        """Register a response that set ``changed`` names to their held versions (``everything``: every
        name the client holds); returns its nonce."""
        nonce = self.next_nonce()
        st.ledger.sent(nonce, version, changed, everything)
        ts = self.status.type(st.type_url)
        ts.sent_version, ts.sent_nonce, ts.sent_at = version, nonce, time.time()
        ts.responses += 1
        self.sent += 1
        return nonce

    def record_ack(self, st: TypeState, nonce: str) -> bool:
        """Envoy applied response ``nonce``; False if it is not one we are waiting for."""
        if not st.ledger.ack(nonce):
            return False
        ts = self.status.type(st.type_url)
        ts.acked_version, ts.acked_at, ts.answered_nonce = st.ledger.sent_version(nonce), time.time(), nonce
        ts.acks += 1
        return True

    def record_nack(self, st: TypeState, nonce: str, message: str) -> None:
        """Envoy rejected response ``nonce`` (applied none of it): the ledger rolls back and remembers; log."""
        changes = st.ledger.nack(nonce, st.sub.wants)
        version = st.ledger.sent_version(nonce)
        ts = self.status.type(st.type_url)
        ts.answered_nonce = nonce
        ts.nacks += 1
        self.status.nacks += 1
        self.status.last_nack = Nack(st.type_url, version, nonce, message, time.time())
        if st.type_url == CLUSTER:
            # A cluster change a later response still carries will warm only once that one is applied;
            # the fresh CLA sent after the rejected response came too early for it.
            self.rewarm.update(n for n in changes if st.ledger.unconfirmed(n))
        log.warning(
            "%s NACKed %s version %s (nonce %s): %s",
            self.node_id,
            SHORT_NAMES.get(st.type_url, st.type_url),
            version,
            nonce,
            one_line(message),
        )

    def after_clusters_sent(self, snap: Snapshot, changed: Iterable[str] | None, now: float) -> None:
        """Rule 2 and 3: every added/changed EDS cluster needs a fresh CLA before LDS/RDS move on.
        ``changed`` None: every cluster of the snapshot (the client held none)."""
        self.cds_sent_at = now
        claims = snap.get(ENDPOINT)
        clusters = snap.get(CLUSTER)
        if changed is None:
            targets = eds_targets(clusters, claims)  # shared by the proxies with this map: never mutate
        else:
            targets = {}
            for name in changed:
                entry = clusters.get(name)
                target = entry.eds_service if entry is not None else None
                if target is not None and target in claims:
                    targets[target] = name
        if not targets:
            return
        cds = self.types.get(CLUSTER)
        if changed is None and cds is not None and (not self.eds_wait or self._eds_held_at == cds.ledger.generation):
            # Every cluster was just sent, so every wait's cluster is held (see _eds_blocked).
            self._eds_held_at = cds.ledger.generation
        deadline = now + GATE_TIMEOUT
        self._eds_earliest = min(self._eds_earliest, deadline) if self.eds_wait else deadline
        self.eds_wait.update({target: (name, deadline) for target, name in targets.items()})
        self._eds_memo = None
        eds = self.types.get(ENDPOINT)
        if eds is not None and eds.sub.names:
            eds.sub.force(targets.keys() & eds.sub.names)

    def after_endpoints_sent(self, names: list[str]) -> None:
        if self.eds_wait:
            self._eds_memo = None
            if len(names) < 32:
                for name in names:
                    self.eds_wait.pop(name, None)
            else:
                left = self.eds_wait.keys() - set(names)
                self.eds_wait = {name: wait for name, wait in self.eds_wait.items() if name in left} if left else {}
            if not self.eds_wait:
                self.eds_wait = {}  # a dict keeps its grown table when emptied

    # -- sequencing ------------------------------------------------------------------------------
    def _eds_blocked(self, snap: Snapshot, now: float) -> bool:
        """Whether LDS/RDS must still wait for a CLA that Envoy needs and the snapshot has.

        A wait ends when the CLA is sent, its cluster leaves what Envoy holds (rejected or
        removed), or after ``GATE_TIMEOUT``; a wait whose CLA the snapshot lacks does not block.
        The answer is kept until the waits, what Envoy holds of CDS or the CLA map change, or the
        earliest wait's deadline passes.
        """
        if not self.eds_wait:
            return False
        cds = self.types.get(CLUSTER)
        claims = snap.get(ENDPOINT)
        generation = cds.ledger.generation if cds is not None else -1
        memo = self._eds_memo
        if memo is not None and memo[0] == generation and memo[1] is claims and now < memo[2]:
            return memo[3]
        waits = len(self.eds_wait)
        if cds is None or self._eds_held_at != generation:
            for name, (cluster, _) in list(self.eds_wait.items()):
                if cds is None or cds.ledger.holds(cluster) is None:
                    del self.eds_wait[name]
            self._eds_held_at = generation
        gave_up = []
        if self._eds_earliest <= now:
            gave_up = [name for name, (_, deadline) in self.eds_wait.items() if deadline <= now]
            for name in gave_up:
                del self.eds_wait[name]
        if gave_up:
            log.info(
                "%s: gave up waiting for Envoy to request %d CLA(s): %s",
                self.node_id,
                len(gave_up),
                ", ".join(repr(n) for n in gave_up[:5]) + (", ..." if len(gave_up) > 5 else ""),
            )
        blocked = any(name in claims for name in self.eds_wait)
        if len(self.eds_wait) != waits or self._eds_earliest <= now:
            self._eds_earliest = min((deadline for _, deadline in self.eds_wait.values()), default=float("inf"))
        self._eds_memo = (generation, claims, self._eds_earliest, blocked)
        return blocked

    def _listeners_wait(self, snap: Snapshot, now: float) -> bool:
        """LDS/RDS go only once the clusters they may use are in place: no CDS response in flight
        (it might be rejected), every new cluster's CLA sent, and no rejected cluster still in the
        snapshot (Envoy keeps its last consistent config until the snapshot changes those)."""
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.ledger.has_rejections:
            return True
        if cds is not None and cds.ledger.in_flight and now - self.cds_sent_at < GATE_TIMEOUT:
            return True
        return self._eds_blocked(snap, now)

    def _may_remove_clusters(self, snap: Snapshot, now: float) -> bool:
        """Rule 4: listeners and routes are up to date (nothing left to send, all answered)."""
        return self._settled(snap, now) and not any(self._dirty(t, snap) for t in (LISTENER, ROUTE))

    def _settled(self, snap: Snapshot, now: float) -> bool:
        if self._eds_blocked(snap, now):
            return False
        return all(not self.types[t].ledger.in_flight for t in (ENDPOINT, LISTENER, ROUTE) if t in self.types)

    def responses(self, snap: Snapshot | None, now: float) -> list[bytes]:
        """Everything to send now, in order (see the module docstring)."""
        if snap is None:
            raise NodeGone(self.node_id)
        idle = self._idle
        if idle is not None and idle[0] is snap and idle[1] == self._generations():
            return []  # nothing changed since a call that had nothing to send and nothing waiting
        self._idle = None
        out: list[bytes] = []
        waited = False
        if self.rewarm:
            self.after_clusters_sent(snap, sorted(self.rewarm), now)
            self.rewarm.clear()
        hold = not self._may_remove_clusters(snap, now)
        for t in TYPE_ORDER:
            st = self.types.get(t)
            if st is None or not st.sub.requested:
                continue
            st.ledger.forget_fixed(snap.get(t))
            if t in (LISTENER, ROUTE) and self._listeners_wait(snap, now):
                waited = True
                continue
            msg = self._build_if_changed(st, snap, now, hold and t == CLUSTER)
            if msg is not None:
                out.append(msg)
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.sub.requested and self._held(cds, snap):
            waited = True
            if self.held_since is None:
                self.held_since = now
            if self._may_remove_clusters(snap, now) or now - self.held_since >= GATE_TIMEOUT:
                msg = self._build_if_changed(cds, snap, now, False)
                if msg is not None:
                    out.append(msg)
                self.held_since = None
        else:
            self.held_since = None
        if not out and not (waited or self.rewarm or self.eds_wait):
            # Until a build could see a change (a new snapshot, a subscription or ledger change: an ACK is
            # none, and with no gate waiting it cannot unblock anything), the answer stays "nothing".
            self._idle = (snap, self._generations())
        return out

    def _generations(self) -> tuple[tuple[int, int], ...]:
        return tuple((st.sub.generation, st.ledger.generation) for st in self.types.values())

    def _build_if_changed(self, st: TypeState, snap: Snapshot, now: float, hold: bool) -> bytes | None:
        """``build``, skipped in O(1) when neither the type's snapshot content nor the stream's state
        for it changed since a build left it up to date; after a snapshot change only, ``changed``
        tells the build which names can differ (diffed once per pair of maps, shared by all streams)."""
        version = snap.versions.get(st.type_url, "")
        key = (version, hold)
        memo = st.memo()
        if memo.clean == key:
            return None
        present = snap.get(st.type_url)
        changed = None
        if memo.clean is not None and memo.clean_map is not None and memo.clean[1] == hold and not st.sub.must_respond:
            changed = changed_names(memo.clean_map, present)
        msg = self.build(st, snap, now, hold, changed)
        # Every build leaves the type up to date with the snapshot (or with what it may send now).
        memo = st.memo()
        memo.clean, memo.clean_map = key, present
        return msg

    def _held(self, cds: TypeState, snap: Snapshot) -> bool:
        """``has_held_removals``, remembered per CDS version until the client state changes."""
        version = snap.versions.get(CLUSTER, "")
        memo = cds.memo()
        if memo.held_at is None or memo.held_at[0] != version:
            memo.held_at = (version, self.has_held_removals(cds, snap))
        return memo.held_at[1]

    def _dirty(self, type_url: str, snap: Snapshot) -> bool:
        """Whether a push of a watched type is coming (Envoy holds something else; rejected versions excluded)."""
        st = self.types.get(type_url)
        if st is None or not st.sub.watched:
            return False
        version = snap.versions.get(type_url, "")
        memo = st.memo()
        if memo.dirty_at is not None and memo.dirty_at[0] == version:
            return memo.dirty_at[1]
        present = snap.get(type_url)
        held = st.ledger.held()
        if equal_versions(held, versions_of(present) if st.sub.wildcard else versions_of(present, st.sub.names)):
            memo.dirty_at = (version, False)  # the client holds exactly what it wants of the snapshot
            return False
        dirty = (type_url in WILDCARD_TYPES and any(n not in present for n in held)) or any(
            e.version != held.get(n) and not st.ledger.rejected(n, e.version)
            for n, e in present.items()
            if st.sub.wants(n)
        )
        memo.dirty_at = (version, dirty)
        return dirty

    def deadline(self) -> float | None:
        """When ``responses`` must run again even without a request or snapshot change.

        Only gates that have not yet given up count: an expired gate stays open, so returning its
        (past) deadline would make the stream spin until the next request.
        """
        now = time.monotonic()
        times = []
        if self.eds_wait:
            # The earliest deadline only ever errs early (waits end, none is added unseen); once it has
            # passed, the earliest still to come.
            earliest = self._eds_earliest
            if earliest <= now:
                earliest = min((d for _, d in self.eds_wait.values() if d > now), default=now)
            times.append(earliest)
        cds = self.types.get(CLUSTER)
        if cds is not None and cds.ledger.in_flight:
            times.append(self.cds_sent_at + GATE_TIMEOUT)
        if self.held_since is not None:
            times.append(self.held_since + GATE_TIMEOUT)
        future = [t for t in times if t > now]
        return min(future) if future else None

    # -- per flavour -----------------------------------------------------------------------------
    def handle(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def build(
        self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool, changed: frozenset[str] | None
    ) -> bytes | None:
        """The response for ``st`` now, if any; ``changed``: None, or the only names that may need sending."""
        raise NotImplementedError

    def has_held_removals(self, st: TypeState, snap: Snapshot) -> bool:
        return not names_within(st.ledger.held(), snap.get(st.type_url))
