"""State-of-the-world ADS (StreamAggregatedResources).

Per type: CDS/LDS are wildcard and full state (every response lists every resource);
EDS/RDS are named, and a response carries only the CLAs/routes that are new to Envoy.
Decision order for a request (Istio's ShouldRespond, plus rollback):
1. ``error_detail`` set: a NACK. Roll back, record, answer nothing; the rejected content is
   never sent again (only a snapshot change or a new subscription produces a response).
2. Nonce not the latest sent for this type: stale, ignored (the spec; Envoy re-sends its
   full subscription with the next ACK, so nothing is lost).
3. Otherwise an ACK (or an initial request): record it, apply the subscription, and answer
   newly requested names; an initial request (no nonce) is always answered.
"""

from __future__ import annotations

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Entry, Snapshot, type_version
from meshxds.xds.cache import NodeStatus
from meshxds.xds.stream import WILDCARD_TYPES, ProtocolError, Stream, TypeState, log
from meshxds.xds.wire import Request, parse_request, sotw_response


class SotwStream(Stream):
    protocol = "sotw"
    full_state_types = WILDCARD_TYPES

    def __init__(self, node_id: str, status: NodeStatus) -> None:
        super().__init__(node_id, status)
        # Entries Envoy may still hold, so held-back cluster removals can be re-sent in full state.
        self.entries: dict[tuple[str, str], Entry] = {}
        # Per named type: (digest, size) of the resource_names bytes that set the names (cheap ACKs).
        self.known_names: dict[str, tuple[bytes, int]] = {}

    def handle(self, data: bytes, now: float) -> None:
        req = parse_request(data, known=self.known_names.values())
        if req.names_reused and self.known_names.get(req.type_url, (b"",))[0] != req.names_digest:
            req = parse_request(data)  # it repeats another type's subscription: decode it after all
        if not req.type_url:
            raise ProtocolError("type_url is required for ADS")
        self._apply(self.state(req.type_url), req)

    def _apply(self, st: TypeState, req: Request) -> None:
        # ACK/NACK bookkeeping for every response, even a superseded one: Envoy answers each in order.
        if req.error is not None:
            self.record_nack(st, req.response_nonce, req.error.message)
            return  # never answered: nothing is sent again until the snapshot or the subscription changes
        if req.response_nonce:
            self.record_ack(st, req.response_nonce)
        nonce = st.ledger.nonce
        if nonce and req.response_nonce != nonce:
            self.status.stale_requests += 1
            log.debug("%s: stale nonce %s for %s ignored", self.node_id, req.response_nonce, st.type_url)
            return
        sub = st.sub
        if not nonce or not req.response_nonce:
            sub.respond_anyway()  # initial request, or a nonce from an earlier stream or server
        first = sub.request()
        if req.names_reused:
            return  # byte-identical to the request that set this subscription: nothing changes
        names = set(req.resource_names)
        if st.type_url in WILDCARD_TYPES:
            sub.set_wildcard("*" in names or (not names and (first or sub.wildcard)))
            names.discard("*")
            if sub.replace_names(names) != (set(), set()):
                sub.respond_anyway()
            return
        added, gone = sub.replace_names(names)
        for name in gone:
            st.ledger.forget(name)
        sub.force(added)  # newly requested: send even if sent before
        if req.names_digest:
            self.known_names[st.type_url] = (req.names_digest, req.names_size)
        else:
            self.known_names.pop(st.type_url, None)

    def build(
        self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool, changed: frozenset[str] | None
    ) -> bytes | None:
        if st.type_url in WILDCARD_TYPES:
            return self._build_full(st, snap, now, hold_removals)
        return self._build_named(st, snap, changed)

    def _build_full(self, st: TypeState, snap: Snapshot, now: float, hold_removals: bool) -> bytes | None:
        present = snap.get(st.type_url)
        ledger = st.ledger
        desired = {n: e for n, e in present.items() if st.sub.wants(n)}
        exact = st.sub.wildcard
        if hold_removals and st.type_url == CLUSTER:
            # What Envoy holds or is about to (never re-add one whose removal is on its way, never
            # repeat a version it rejected).
            for name, version in ledger.held().items():
                held = self.entries.get((name, version))
                if name not in present and not ledger.rejected(name, version) and held is not None:
                    desired[name] = held
                    exact = False
        versions = {n: e.version for n, e in desired.items()}
        # The snapshot's own version, unless this is a subset or removals are held back.
        key = snap.versions.get(st.type_url, "") if exact else type_version(desired)
        # A whole state Envoy rejected is not sent again, however many responses ago it was.
        if not st.sub.take_must_respond() and (versions == ledger.held() or ledger.rejected_state(key)):
            return None
        changed = [n for n, v in versions.items() if ledger.holds(n) != v]
        touched = sorted(set(ledger.held()) | set(versions))  # full state: every name is set or removed
        ledger.replace(versions)
        nonce = self.record_sent(st, key, touched)
        if st.type_url == CLUSTER:
            self.entries.update(((n, e.version), e) for n, e in desired.items())
            self._prune(st)
            self.after_clusters_sent(snap, changed, now)
        return sotw_response(st.type_url, key, (desired[n].any for n in sorted(desired)), nonce)

    def _build_named(self, st: TypeState, snap: Snapshot, changed: frozenset[str] | None) -> bytes | None:
        present = snap.get(st.type_url)
        sub, ledger = st.sub, st.ledger
        # After a snapshot change alone only the changed names can need sending (see Stream.responses).
        pool = sub.names if changed is None or len(changed) > len(sub.names) else changed
        names = sorted(n for n in pool if n in present and n in sub.names)
        if sub.take_must_respond():
            todo = names
        else:
            todo = [
                n
                for n in names
                if sub.forced(n)
                or (present[n].version != ledger.holds(n) and not ledger.rejected(n, present[n].version))
            ]
        if not todo:
            return None
        for n in todo:
            ledger.set(n, present[n].version)
        sub.answered(todo)
        version = snap.versions.get(st.type_url, "")
        nonce = self.record_sent(st, version, todo)
        if st.type_url == ENDPOINT:
            self.after_endpoints_sent(todo)
        return sotw_response(st.type_url, version, (present[n].any for n in todo), nonce)

    def _prune(self, cds: TypeState) -> None:
        """Keep only the cluster entries Envoy may hold: confirmed, in flight, or just sent."""
        keep = cds.ledger.maybe_held()
        for key in [k for k in self.entries if k not in keep]:
            del self.entries[key]
