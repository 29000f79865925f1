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

from collections.abc import Mapping

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Entry, Snapshot, type_version
from meshxds.xds import framing
from meshxds.xds.cache import NodeStatus
from meshxds.xds.diff import changed_versions, equal_versions, names_within, subscribed_sorted, versions_of
from meshxds.xds.stream import WILDCARD_TYPES, ProtocolError, Stream, TypeState, log
from meshxds.xds.wire import Request, parse_request, sotw_response_framed


class SotwStream(Stream):
    protocol = "sotw"
    full_state_types = WILDCARD_TYPES

    def __init__(self, node_id: str, status: NodeStatus) -> None:
        super().__init__(node_id, status)
        # The cluster maps sent whose entries Envoy may still hold (shared snapshot maps, newest last, each
        # with the version map the ledger holds for it),
        # so held-back cluster removals can be re-sent in full state.
        self.cluster_maps: list[tuple[Mapping[str, Entry], Mapping[str, str]]] = []
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
        if st.type_url in WILDCARD_TYPES:
            names = set(req.resource_names)
            sub.set_wildcard("*" in names or (not names and (first or sub.wildcard)))
            names.discard("*")
            if sub.replace_names(names) != (set(), set()):
                sub.respond_anyway()
            return
        added, gone = sub.replace_names(req.resource_names)
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
        exact = st.sub.wildcard
        # Wildcard: the snapshot's own map, shared by every proxy that holds it (and framed once for all).
        desired: Mapping[str, Entry] = present if exact else {n: e for n, e in present.items() if st.sub.wants(n)}
        held_before = ledger.held()
        if hold_removals and st.type_url == CLUSTER and not names_within(held_before, present):
            # What Envoy holds or is about to (never re-add one whose removal is on its way, never
            # repeat a version it rejected).
            extra = {}
            for name, version in held_before.items():
                if name in present or ledger.rejected(name, version):
                    continue
                held = self._sent_entry(name, version)
                if held is not None:
                    extra[name] = held
            if extra:
                desired = {**desired, **extra}
                exact = False
        # Wildcard with nothing held back: the version map every proxy with this map shares.
        versions = versions_of(present) if exact else {n: e.version for n, e in desired.items()}
        # The snapshot's own version, unless this is a subset or removals are held back.
        key = snap.versions.get(st.type_url, "") if exact else type_version(desired)
        # A whole state Envoy rejected is not sent again, however many responses ago it was.
        if not st.sub.take_must_respond() and (equal_versions(versions, held_before) or ledger.rejected_state(key)):
            return None
        ledger.replace(versions)
        nonce = self.record_sent(st, key, [])  # full state: the ledger keeps whole states, not names
        if st.type_url == CLUSTER:
            self._keep_sent(st, desired, versions)
            # A first whole-snapshot response (the client held none): every cluster, from the shared map.
            first = exact and not held_before
            self.after_clusters_sent(snap, None if first else changed_versions(held_before, versions), now)
        resources = framing.whole(present) if exact else framing.each(desired, sorted(desired))
        return sotw_response_framed(st.type_url, key, resources, nonce)

    def _build_named(self, st: TypeState, snap: Snapshot, changed: frozenset[str] | None) -> bytes | None:
        present = snap.get(st.type_url)
        sub, ledger = st.sub, st.ledger
        # After a snapshot change alone only the changed names can need sending (see Stream.responses).
        if changed is None or len(changed) > len(sub.names):
            names = subscribed_sorted(sub.names, present)  # shared by the streams with these names: never mutate
        else:
            names = sorted(n for n in changed if n in present and n in sub.names)
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
        versions = versions_of(present, sub.names)
        everything = len(todo) == len(versions) and not ledger.held()
        if everything:
            ledger.replace(versions)  # a first answer with every subscribed name: hold the shared map
        else:
            for n in todo:
                ledger.set(n, present[n].version)
            ledger.share(versions)
        sub.answered(todo)
        version = snap.versions.get(st.type_url, "")
        nonce = self.record_sent(st, version, todo, everything)
        if st.type_url == ENDPOINT:
            self.after_endpoints_sent(todo)
        return sotw_response_framed(st.type_url, version, framing.some(present, todo), nonce)

    def _sent_entry(self, name: str, version: str) -> Entry | None:
        for entries, _ in reversed(self.cluster_maps):
            entry = entries.get(name)
            if entry is not None and entry.version == version:
                return entry
        return None

    def _keep_sent(self, cds: TypeState, sent: Mapping[str, Entry], versions: Mapping[str, str]) -> None:
        """Remember the map just sent (with the version map the ledger holds for it); keep only the maps
        holding some entry Envoy may hold (confirmed, in flight, or just sent)."""
        maps = [m for m in self.cluster_maps if m[0] is not sent] + [(sent, versions)]
        # Usually every state the client may hold is the version map of one sent map: keep those.
        kept: list[int] = []
        for state in cds.ledger.states():
            if not state:
                continue
            i = next((i for i, m in enumerate(maps) if m[1] is state), -1)
            if i < 0:
                break
            kept.append(i)
        else:
            self.cluster_maps = [m for i, m in enumerate(maps) if i in kept]
            return
        # Else each entry is looked up in the newest map that has it.
        needed: set[int] = set()
        for name, version in cds.ledger.maybe_held():
            for i in range(len(maps) - 1, -1, -1):
                entry = maps[i][0].get(name)
                if entry is not None and entry.version == version:
                    needed.add(i)
                    break
        self.cluster_maps = [m for i, m in enumerate(maps) if i in needed]
