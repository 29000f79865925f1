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
from meshxds.xds.stream import REMOVED, WILDCARD_TYPES, ProtocolError, Stream, TypeState, log
from meshxds.xds.wire import delta_response, parse_delta_request


class DeltaStream(Stream):
    protocol = "delta"

    def handle(self, data: bytes, now: float) -> None:
        req = parse_delta_request(data)
        if not req.type_url:
            raise ProtocolError("type_url is required for ADS")
        st = self.state(req.type_url)
        if not st.requested or req.subscribe or req.unsubscribe:
            st.touch()
        first = not st.requested
        st.requested = True
        if first:
            st.client = dict(req.initial_versions)
            st.confirmed = dict(req.initial_versions)
            st.must_respond = True
            st.wildcard = st.type_url in WILDCARD_TYPES and not req.subscribe
        for name in req.subscribe:
            if name == "*":
                st.wildcard = True
                continue
            st.names.add(name)
            if not first or name not in req.initial_versions:
                st.force.add(name)  # an explicit subscribe is always answered
        for name in req.unsubscribe:
            if name == "*":
                st.wildcard = False
                continue
            st.names.discard(name)
            st.force.discard(name)
            if not st.wildcard:
                st.client.pop(name, None)
                st.confirmed.pop(name, None)
        nonce = req.response_nonce
        if not nonce:
            return
        if req.error is not None:
            self.record_nack(st, nonce, req.error.message)
        else:
            self.record_ack(st, nonce)

    def build(self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool) -> bytes | None:
        t = st.type_url
        present = snap.get(t)
        # After a snapshot change alone only the changed names can need sending (see Stream.responses).
        candidates = [n for n in (present if st.changed is None else st.changed) if n in present and st.wants(n)]
        updates = sorted(
            n for n in candidates if n in st.force or present[n].version not in (st.client.get(n), st.nacked.get(n))
        )
        removed: list[str] = []
        if t in WILDCARD_TYPES and not (hold_removals and t == CLUSTER):
            removed = sorted(
                n for n in st.client if (n not in present or not st.wants(n)) and st.nacked.get(n) != REMOVED
            )
        initial = st.must_respond and t in WILDCARD_TYPES
        st.must_respond = False
        if not updates and not removed and not initial:
            return None
        for n in updates:
            st.client[n] = present[n].version
        for n in removed:
            st.client.pop(n, None)
        st.force.difference_update(updates)
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
        return any(n not in present and st.nacked.get(n) != REMOVED for n in st.client)
