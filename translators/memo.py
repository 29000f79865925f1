"""Memos that carry one build's messages into the next, so a reload rebuilds only what changed.

Within a build a value is found by ``key`` (often an object's ``id()``, for speed); across builds by
a content key that captures every input of ``make``. An old value is taken at most once per build:
a fresh build makes one object per key, and the snapshot builder dedups by identity, so taking an
old value twice could merge two resources that a fresh build keeps apart (and reports as a clash).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Values by ``key`` for this build; misses first try the previous build's values by content key."""

    def __init__(self, previous: Memo[K, V] | None = None) -> None:
        self._old: dict[Hashable, V] = dict(previous.made) if previous is not None else {}
        self._found: dict[K, V] = {}
        self.made: dict[Hashable, V] = {}  # by content key: what the next build may take

    def get(self, key: K, make: Callable[[], V], content: Callable[[], Hashable] | None = None) -> V:
        """The value for ``key``; ``content`` (default: the key itself) names every input ``make`` reads."""
        value = self._found.get(key)
        if value is None:
            ckey: Hashable = key if content is None else content()
            value = self._old.pop(ckey, None)
            if value is None:
                value = make()
            self._found[key] = value
            self.made.setdefault(ckey, value)
        return value

    def release(self) -> None:
        """The build is done: let go of the previous build's values it did not take."""
        self._old = {}


def same_items(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """The very same objects in the same order (message ``==`` would compare content, slowly)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
