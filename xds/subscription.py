"""What the client asked for on one type of one stream.

The subscription is the client's side of the conversation: wildcard or not, the names it wants,
and what the next push must answer even if the client is believed to hold it already (an initial
request, newly requested names, a CLA that a changed cluster needs). It changes only through
these methods; ``generation`` counts the changes, so the stream's push memo knows when to drop.
"""

from __future__ import annotations

from collections.abc import Iterable, Set


class Subscription:
    """Wildcard flag, subscribed names and must-answer marks of one type (go-control-plane style:
    state behind methods)."""

    __slots__ = ("_force", "_must_respond", "_names", "_requested", "_wildcard", "generation")

    def __init__(self) -> None:
        self._requested = False
        self._wildcard = False
        self._names: set[str] = set()
        self._must_respond = False
        self._force: set[str] = set()
        self.generation = 0

    # -- reading ---------------------------------------------------------------------------------
    @property
    def requested(self) -> bool:
        """The client sent at least one request for this type."""
        return self._requested

    @property
    def wildcard(self) -> bool:
        return self._wildcard

    @property
    def names(self) -> Set[str]:
        """The explicitly subscribed names (read-only view)."""
        return self._names

    @property
    def must_respond(self) -> bool:
        """The next push answers even if nothing changed (initial request, new subscription)."""
        return self._must_respond

    @property
    def watched(self) -> bool:
        return self._requested and (self._wildcard or bool(self._names))

    def wants(self, name: str) -> bool:
        return self._wildcard or name in self._names

    def forced(self, name: str) -> bool:
        """``name`` must be sent even if the client holds its current version."""
        return name in self._force

    # -- changing --------------------------------------------------------------------------------
    def request(self) -> bool:
        """A request for this type arrived; True if it is the first."""
        if self._requested:
            return False
        self._requested = True
        self.generation += 1
        return True

    def respond_anyway(self) -> None:
        if not self._must_respond:
            self._must_respond = True
            self.generation += 1

    def take_must_respond(self) -> bool:
        """For a build: whether it must answer; clears the mark."""
        if not self._must_respond:
            return False
        self._must_respond = False
        self.generation += 1
        return True

    def set_wildcard(self, on: bool) -> None:
        if on != self._wildcard:
            self._wildcard = on
            self.generation += 1

    def replace_names(self, names: set[str]) -> tuple[set[str], set[str]]:
        """A SotW request's full list of names; returns (added, gone)."""
        added, gone = names - self._names, self._names - names
        if added or gone:
            self._names = names
            self._force -= gone
            self.generation += 1
        return added, gone

    def add(self, name: str) -> None:
        if name not in self._names:
            self._names.add(name)
            self.generation += 1

    def discard(self, name: str) -> None:
        if name in self._names or name in self._force:
            self._names.discard(name)
            self._force.discard(name)
            self.generation += 1

    def force(self, names: Iterable[str]) -> None:
        """Send these names on the next push even if the client holds them."""
        new = set(names) - self._force
        if new:
            self._force |= new
            self.generation += 1

    def answered(self, names: Iterable[str]) -> None:
        """These names were just sent: no longer forced."""
        if self._force:
            before = len(self._force)
            self._force.difference_update(names)
            if len(self._force) != before:
                self.generation += 1
