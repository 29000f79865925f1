"""What one Catalog build carries into the next, so a reload redoes only the steps whose inputs changed.

Every step of assembling a Catalog is a pure function of its inputs. A ``Table`` keeps each result
with the inputs it was made from; the next build takes it when the inputs compare equal. Inputs are
compared as a tuple, so unchanged objects (the loader's cache hands back the very same ones) cost an
identity check, and changed ones a content comparison. Results taken over stay the very same
objects, which is what lets the translators downstream reuse their own work by identity.

A build makes a new ``CatalogMemo`` from the previous one and keeps only what it used, so at most
one build's results live on (in the Catalog they made).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

V = TypeVar("V")


class Table:
    """Results by key, each with the inputs it was made from; this build's, and the previous build's to take."""

    def __init__(self, previous: Table | None = None) -> None:
        self._old: dict[Hashable, tuple[Any, ...]] = previous._new if previous is not None else {}
        self._new: dict[Hashable, tuple[Any, ...]] = {}

    def get(self, key: Hashable, inputs: tuple[Any, ...], make: Callable[[], V], keep_equal: bool = False) -> V:
        """The result for ``inputs`` (made now if neither build has it under ``key``).

        ``key`` names the slot (often ``id()`` of an input that ``inputs`` holds, keeping the id unique);
        with ``keep_equal`` a result made anew that equals the slot's previous one is replaced by it,
        so an unchanged outcome of changed inputs stays the very same object.
        """
        entry = self._new.get(key)
        if entry is not None and entry[0] == inputs:
            value: V = entry[1]
            return value
        old = self._old.get(key)
        if old is not None and old[0] == inputs:
            value = old[1]
        else:
            value = make()
            if keep_equal and old is not None and old[1] == value:
                value = old[1]
        self._new[key] = (inputs, value)
        return value

    def of(self, obj: object, extra: Hashable, make: Callable[..., V], *args: Any) -> V:
        """``get`` for a result of one object (plus ``extra``, compared by ``==``), by the object's identity:
        the cheap path for the per-resource steps, which run for every resource of every build.
        On a miss the result is ``make(*args)``."""
        key = id(obj)
        entry = self._new.get(key)
        if entry is None or entry[0] is not obj or entry[1] != extra:
            entry = self._old.get(key)
            if entry is None or entry[0] is not obj or entry[1] != extra:
                entry = (obj, extra, make(*args))
            self._new[key] = entry
        value: V = entry[2]
        return value

    def release(self) -> None:
        """The build is done: let go of the previous build's results it did not take."""
        self._old = {}

    def last(self, key: Hashable) -> Any:
        """What the previous build left under ``key`` (whatever its inputs), or None: for steps that update
        their previous result rather than compare inputs."""
        entry = self._old.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: Hashable, value: object) -> None:
        """Leave ``value`` under ``key`` for the next build's ``last``."""
        self._new[key] = ((), value)

    def keep(self, key: Hashable, value: V) -> V:
        """``value``, or the previous build's equal value under ``key`` (so equal content becomes the same object)."""
        entry = self._new.get(key) or self._old.get(key)
        if entry is not None and (entry[1] is value or entry[1] == value):
            value = entry[1]
        self._new[key] = ((), value)
        return value


class CatalogMemo:
    """One ``Table`` per step of ``catalog_from_documents``; each step names its key and inputs where it calls it.

    Kept in the Catalog it made (``Catalog.memo``), so a caller that passes ``previous`` passes it along; any
    memo is valid with any inputs (a result is taken only when its inputs are equal), only slower when stale.
    """

    STEPS = (
        "canonical",
        "checks",
        "k8s",
        "stored",
        "candidates",
        "ports",
        "generated",
        "vips",
        "selection",
        "status",
        "renders",
        "hostnames",
        "multizone",
        "defaults",
        "policy_refs",
        "references",
        "interned",
    )

    def __init__(self, previous: CatalogMemo | None = None) -> None:
        self.tables: dict[str, Table] = {
            step: Table(previous.tables[step] if previous else None) for step in self.STEPS
        }

    def release(self) -> None:
        """The build is done: keep only its own results (the previous build's can be freed)."""
        for table in self.tables.values():
            table.release()

    def __getitem__(self, step: str) -> Table:
        return self.tables[step]

    def intern(self, key: Hashable, items: tuple[V, ...]) -> tuple[V, ...]:
        """``items``, or the previous build's equal tuple under ``key``: its identity then says "unchanged"."""
        return self.tables["interned"].keep(key, items)
