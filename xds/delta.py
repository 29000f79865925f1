"""Incremental ADS (DeltaAggregatedResources).

Per type the stream tracks the version of every resource Envoy is assumed to hold
(seeded from ``initial_resource_versions`` on reconnect) and sends only the difference:
changed resources with their own versions, and ``removed_resources`` for wildcard types.
Subscription changes are honoured whatever their nonce (the spec). A NACK rolls the
assumed state back to before the rejected response (Envoy applied none of it) and the
rejected versions are not re-sent, so there is no NACK storm; a later snapshot with
different content is sent as usual.
"""

from __future__ import annotations

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Snapshot
from meshxds.xds.ledger import REMOVED
from meshxds.xds.stream import WILDCARD_TYPES, ProtocolError, Stream, TypeState, log
from meshxds.xds.wire import delta_response, parse_delta_request


class DeltaStream(Stream):
    protocol = "delta"

    def handle(self, data: bytes, now: float) -> None:
        req = parse_delta_request(data)
        if not req.type_url:
            raise ProtocolError("type_url is required for ADS")
        st = self.state(req.type_url)
        sub, ledger = st.sub, st.ledger
        first = sub.request()
        if first:
            ledger.seed(req.initial_versions)
            sub.respond_anyway()
            sub.set_wildcard(st.type_url in WILDCARD_TYPES and not req.subscribe)
        for name in req.subscribe:
            if name == "*":
                sub.set_wildcard(True)
                continue
            sub.add(name)
            if not first or name not in req.initial_versions:
                sub.force((name,))  # an explicit subscribe is always answered
        for name in req.unsubscribe:
            if name == "*":
                sub.set_wildcard(False)
                continue
            sub.discard(name)
            if not sub.wildcard:
                ledger.forget(name)
        nonce = req.response_nonce
        if not nonce:
            return
        if req.error is not None:
            self.record_nack(st, nonce, req.error.message)
        else:
            self.record_ack(st, nonce)

    def build(
        self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool, changed: frozenset[str] | None
    ) -> bytes | None:
        t = st.type_url
        sub, ledger = st.sub, st.ledger
        present = snap.get(t)
        # After a snapshot change alone only the changed names can need sending (see Stream.responses).
        candidates = [n for n in (present if changed is None else changed) if n in present and sub.wants(n)]
        updates = sorted(
            n
            for n in candidates
            if sub.forced(n) or (present[n].version != ledger.holds(n) and not ledger.rejected(n, present[n].version))
        )
        removed: list[str] = []
        if t in WILDCARD_TYPES and not (hold_removals and t == CLUSTER):
            removed = sorted(
                n for n in ledger.held() if (n not in present or not sub.wants(n)) and not ledger.rejected(n, REMOVED)
            )
        initial = sub.take_must_respond() and t in WILDCARD_TYPES
        if not updates and not removed and not initial:
            return None
        for n in updates:
            ledger.set(n, present[n].version)
        for n in removed:
            ledger.remove(n)
        sub.answered(updates)
        version = snap.versions.get(t, "")
        nonce = self.record_sent(st, version, [*updates, *removed])
        if t == CLUSTER:
            self.after_clusters_sent(snap, updates, now)
        elif t == ENDPOINT:
            self.after_endpoints_sent(updates)
        if removed:
            log.debug("%s: removing %s %s", self.node_id, t, removed)
        return delta_response(t, version, ((n, present[n].version, present[n].any) for n in updates), removed, nonce)

    def has_held_removals(self, st: TypeState, snap: Snapshot) -> bool:
        present = snap.get(st.type_url)
        return any(n not in present and not st.ledger.rejected(n, REMOVED) for n in st.ledger.held())
