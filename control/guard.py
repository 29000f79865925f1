"""The mass-removal guard: a change that would remove most proxies at once is held unless it persists.

A truncated file, a half-finished ``rsync`` or an unmounted volume looks like "most Dataplanes were
deleted"; serving that closes every affected stream. Such a change waits ``hold`` seconds and is
applied only if the input still says the same thing then (a real mass deletion stays).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Set
from dataclasses import dataclass

log = logging.getLogger("meshxds.guard")


@dataclass(frozen=True)
class Held:
    key: Hashable  # the input state that was held (its fingerprint)
    since: float
    removed: int
    total: int

    def reason(self, hold: float) -> str:
        return f"a change removing {self.removed} of {self.total} proxies is held for {hold:g} s"


class RemovalGuard:
    """``max_fraction`` ≥ 1 turns the guard off; fewer than ``min_removed`` removals are never held."""

    def __init__(self, max_fraction: float = 0.5, hold: float = 10.0, min_removed: int = 10) -> None:
        self.max_fraction = max_fraction
        self.hold = hold
        self.min_removed = min_removed
        self.held: Held | None = None

    def allows(self, current: Set[str], new: Set[str], key: Hashable, now: float) -> bool:
        """Whether a change from ``current`` to ``new`` nodes (input state ``key``) may be applied now."""
        removed = len(current - new)
        if removed < self.min_removed or removed <= self.max_fraction * len(current) or self.max_fraction >= 1:
            self.held = None
            return True
        if self.held is not None and self.held.key == key:
            if now - self.held.since >= self.hold:
                log.warning("applying the held change: the input still removes %d of %d proxies", removed, len(current))
                self.held = None
                return True
            return False
        self.held = Held(key, now, removed, len(current))
        log.warning(
            "%s (more than %.0f %%); it is applied if the input stays like this",
            self.held.reason(self.hold),
            self.max_fraction * 100,
        )
        return False

    def due(self, now: float) -> bool:
        """A held change whose hold time has passed (the watcher then reloads to apply it)."""
        return self.held is not None and now - self.held.since >= self.hold
