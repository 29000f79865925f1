"""What the client holds on one type of one stream, kept exact through ACKs and NACKs.

``confirmed`` is what Envoy ACKed; each response it has not answered yet is ``pending`` (nonce ->
name -> version, None = removed); ``client`` is confirmed + pending, in order. Envoy applies and
answers responses in order, so an ACK moves a response into ``confirmed`` and a NACK drops it
(Envoy applied none of it): exact, even with several responses in flight. What a NACK rejected is
remembered so it is not sent again while the snapshot still holds it.

Full state (SotW CDS/LDS): every response replaces everything, so ``pending`` holds whole states
and ``client`` is replaced, never mutated, which lets it be shared instead of copied.
Named types share too: ``client`` and ``confirmed`` are copied on write, ``confirmed`` is ``client``
once every response is answered, and ``share`` swaps ``client`` for an equal map other streams
share (``diff.versions_of``), so a stream holding what every proxy holds owns no copy of it.
All state is behind methods; ``generation`` counts the changes a build could see (an ACK is not
one: it moves a response from pending to confirmed, and builds read ``client``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

from meshxds.snapshots.snapshot import Entry

REMOVED = ""  # in the rejected versions: Envoy rejected a response that removed this name
KEEP_SENT = 64  # sent versions remembered for ACK/NACK reports
KEEP_REJECTED_STATES = 16  # whole rejected states remembered (full state only)


class Ledger:
    """The client's resources of one type as the server believes them to be."""

    __slots__ = (
        "_client",
        "_client_owned",
        "_confirmed",
        "_confirmed_owned",
        "_diverged",
        "_nacked",
        "_nonce",
        "_pending",
        "_rejected",
        "_rejected_states",
        "_sent_versions",
        "full_state",
        "generation",
    )

    def __init__(self, full_state: bool = False) -> None:
        self.full_state = full_state
        # Copied on write: ``_client_owned``/``_confirmed_owned`` say whether the map may be mutated.
        self._client: Mapping[str, str] = {}
        self._confirmed: Mapping[str, str] = {}
        self._client_owned = False
        self._confirmed_owned = False
        self._pending: dict[str, dict[str, str | None]] = {}
        self._rejected: list[dict[str, str | None]] = []  # NACKed responses' suspect changes
        self._nacked: dict[str, str] = {}  # name -> version not to send again (REMOVED: its removal)
        self._rejected_states: dict[str, None] = {}  # full state: versions of rejected whole states
        self._sent_versions: dict[str, str] = {}  # nonce -> version, for ACK/NACK reports
        self._nonce = ""
        self.generation = 0
        # Named types: whether confirmed may differ from "client minus the pending changes" (after a NACK);
        # until then, answering the last pending response makes confirmed the client map without a copy.
        self._diverged = False

    # -- reading ---------------------------------------------------------------------------------
    @property
    def nonce(self) -> str:
        """The latest response's nonce ("" before the first)."""
        return self._nonce

    @property
    def in_flight(self) -> bool:
        """Some response is not answered yet."""
        return bool(self._pending)

    @property
    def has_rejections(self) -> bool:
        """A rejected response's content is still blocked (see ``forget_fixed``)."""
        return bool(self._rejected)

    def held(self) -> Mapping[str, str]:
        """name -> version the client holds or is about to (read-only)."""
        return self._client

    def holds(self, name: str) -> str | None:
        return self._client.get(name)

    def unconfirmed(self, name: str) -> bool:
        """The client is about to hold a version of ``name`` it has not ACKed."""
        return self._client.get(name) not in (None, self._confirmed.get(name))

    def rejected(self, name: str, version: str) -> bool:
        """Envoy rejected ``version`` of ``name`` (REMOVED: its removal) and nothing changed since."""
        return self._nacked.get(name) == version

    def rejected_state(self, version: str) -> bool:
        """Full state: Envoy rejected a whole state of this version."""
        return version in self._rejected_states

    def sent_version(self, nonce: str) -> str:
        return self._sent_versions.get(nonce, "")

    def states(self) -> list[Mapping[str, str]]:
        """Full state: every whole state the client may hold (confirmed, in flight, just sent)."""
        return [self._confirmed, self._client, *cast(dict[str, Mapping[str, str]], self._pending).values()]

    def maybe_held(self) -> set[tuple[str, str]]:
        """Every (name, version) the client may hold: confirmed, in flight or just sent."""
        keep = set(self._client.items()) | set(self._confirmed.items())
        for changes in self._pending.values():
            keep.update((n, v) for n, v in changes.items() if v is not None)
        return keep

    def _own_client(self) -> dict[str, str]:
        if not self._client_owned:
            self._client = dict(self._client)
            self._client_owned = True
        return cast(dict[str, str], self._client)

    def _own_confirmed(self) -> dict[str, str]:
        if not self._confirmed_owned:
            self._confirmed = dict(self._confirmed)
            self._confirmed_owned = True
        return cast(dict[str, str], self._confirmed)

    def share(self, versions: Mapping[str, str]) -> None:
        """Hold ``versions`` (a shared, never mutated map) instead of ``client`` if they are equal."""
        if versions is not self._client and versions == self._client:
            self._client, self._client_owned = versions, False

    # -- the client's side -----------------------------------------------------------------------
    def seed(self, versions: Mapping[str, str]) -> None:
        """Delta reconnect: the client says what it holds (``initial_resource_versions``)."""
        self._client = self._confirmed = dict(versions)
        self._client_owned = self._confirmed_owned = False
        self.generation += 1

    def forget(self, name: str) -> None:
        """The client unsubscribed ``name`` and dropped it."""
        if name in self._client or name in self._confirmed:
            if name in self._client:
                self._own_client().pop(name, None)
            if name in self._confirmed:
                self._own_confirmed().pop(name, None)
            self.generation += 1

    # -- what a build sends ----------------------------------------------------------------------
    def replace(self, versions: Mapping[str, str]) -> None:
        """Full state: the next response sets exactly ``versions`` (the map is kept, not copied: never mutate it)."""
        self._client, self._client_owned = versions, False
        self.generation += 1

    def set(self, name: str, version: str) -> None:
        self._own_client()[name] = version
        self.generation += 1

    def remove(self, name: str) -> None:
        if name in self._client:
            self._own_client().pop(name, None)
        self.generation += 1

    def sent(self, nonce: str, version: str, changed: Iterable[str], everything: bool = False) -> None:
        """A response with ``nonce`` set ``changed`` names to their ``held`` versions (``everything``: it
        set every name the client holds, so ``changed`` need not be read)."""
        self._nonce = nonce
        # Full state, or every name of a shared (never mutated) client map: share it instead of copying.
        shared = cast(dict[str, str | None], self._client)
        if self.full_state or (everything and not self._client_owned):
            self._pending[nonce] = shared
        else:
            self._pending[nonce] = {name: self._client.get(name) for name in changed}
        self._sent_versions[nonce] = version
        if len(self._sent_versions) > KEEP_SENT:
            self._sent_versions.pop(next(iter(self._sent_versions)))
        self.generation += 1

    # -- the client's answers --------------------------------------------------------------------
    def ack(self, nonce: str) -> bool:
        """Envoy applied response ``nonce``; False if it is not one we are waiting for."""
        changes = self._pending.pop(nonce, None)
        if changes is None:
            return False
        if self.full_state:
            self._confirmed = changes  # type: ignore[assignment]  # a whole state, shared, never mutated
            self._confirmed_owned = False
            return True
        if not self._pending and not self._diverged:
            # The last response answered: confirmed + every pending change in order is the client map.
            self._confirmed, self._client_owned, self._confirmed_owned = self._client, False, False
            return True
        confirmed = self._own_confirmed()
        for name, version in changes.items():
            if version is None:
                confirmed.pop(name, None)
            else:
                confirmed[name] = version
        if not self._pending and confirmed == self._client:
            # Every response answered and nothing rolled back: one map for both (copied on write).
            self._confirmed = self._client
            self._client_owned = self._confirmed_owned = False
            self._diverged = False
        return True

    def nack(self, nonce: str, wants: Callable[[str], bool]) -> dict[str, str | None]:
        """Envoy rejected response ``nonce`` (applied none of it): roll the client back and remember
        what was rejected. Returns the rejected response's changes (empty if it is unknown)."""
        changes = self._pending.pop(nonce, None) or {}
        self.generation += 1
        self._diverged = True  # a rollback may leave confirmed holding what the client dropped
        if self.full_state and changes:
            self._client = list(self._pending.values())[-1] if self._pending else self._confirmed  # type: ignore[assignment]
            self._client_owned = False
            if nonce in self._sent_versions:
                self._rejected_states[self._sent_versions[nonce]] = None
                if len(self._rejected_states) > KEEP_REJECTED_STATES:
                    self._rejected_states.pop(next(iter(self._rejected_states)))
        for name in changes if not self.full_state else ():
            now_held = next((c[name] for c in reversed(self._pending.values()) if name in c), self._confirmed.get(name))
            if now_held is None or not wants(name):
                if name in self._client:
                    self._own_client().pop(name, None)
            else:
                self._own_client()[name] = now_held
        # Envoy accepted the confirmed versions before, so the culprit is among the others.
        suspects = {n: v for n, v in changes.items() if v is None or self._confirmed.get(n) != v}
        if suspects:
            self._rejected.append(suspects)
            self._nacked.update((name, version or REMOVED) for name, version in suspects.items())
        return changes

    def forget_fixed(self, present: Mapping[str, Entry]) -> None:
        """Keep blocking a rejected response's content only while the snapshot still holds all of it.

        Envoy does not say which resource was bad. While every resource of a rejected response is
        unchanged, sending any of it again would be rejected again; once one changed or went away
        (the culprit may be fixed), the others, good ones that came with it included, may go again.
        """
        if not self._rejected:
            return

        def intact(changes: dict[str, str | None]) -> bool:
            return all(
                (name not in present) if version is None else (name in present and present[name].version == version)
                for name, version in changes.items()
            )

        kept = [changes for changes in self._rejected if intact(changes)]
        if len(kept) != len(self._rejected):
            self._rejected = kept
            self._nacked = {n: v or REMOVED for changes in kept for n, v in changes.items()}
            self.generation += 1
