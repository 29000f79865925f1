"""Which names changed between two per-type snapshot maps, computed once per pair and shared;
and the version maps streams share to record what their clients hold.

Proxies share the snapshot's type maps (or the layers of a ``Layered`` map), so after one
endpoint change thousands of streams ask for the same (old map, new map) difference: it is
computed once, and each stream then looks only at the changed names it subscribes to.
Everything here is derived from maps that are never mutated (and interned name sets), so it is
kept per identity of its inputs (``IdentityMemo``) and must never be mutated either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Generic, TypeVar

from meshxds.snapshots.snapshot import Entry, Layered

CACHE_SIZE = 512
SHARE_AT = 32  # smaller maps are cheaper to build per stream than to look up
_NONE: frozenset[str] = frozenset()
T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """Results computed from long-lived, never mutated objects, kept per identity of those objects
    (referenced here, so their ids are not reused while kept); least recently used dropped."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], T]] = OrderedDict()

    def get(self, inputs: tuple[object, ...], build: Callable[[], T]) -> T:
        key = tuple(map(id, inputs))
        hit = self._items.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], inputs, strict=True)):
            self._items.move_to_end(key)
            return hit[1]
        result = build()
        self._items[key] = (inputs, result)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return result


_changed: IdentityMemo[frozenset[str]] = IdentityMemo()


def changed_names(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> frozenset[str]:
    """Names in ``new`` that ``old`` lacks or holds at another version (removals are not listed)."""
    if old is new:
        return _NONE
    return _changed.get((old, new), lambda: _changed_names(old, new))


def _changed_names(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> frozenset[str]:
    if isinstance(old, Layered) and isinstance(new, Layered) and len(old.layers) == len(new.layers):
        # Names never overlap between the layers of one map, so a name whose entry is new in the
        # merged map is new or changed in its own layer (a name moving layers is listed: harmless).
        return _NONE.union(*(changed_names(a, b) for a, b in zip(old.layers, new.layers, strict=True)))
    return frozenset(n for n, e in new.items() if (o := old.get(n)) is None or o.version != e.version)


_versions: IdentityMemo[Mapping[str, str]] = IdentityMemo()


def versions_of(entries: Mapping[str, Entry], names: AbstractSet[str] | None = None) -> Mapping[str, str]:
    """name -> version of ``entries`` (only ``names`` if given), one shared map per (map, names) pair.

    Streams record what their client holds as such a map while it is exactly this, so a stream's
    own state is what it differs on, not a copy of what every proxy holds. Never mutate the result.
    """
    if isinstance(entries, Layered) and names is None:
        return Layered(*(versions_of(layer) for layer in entries.layers))
    if len(entries) < SHARE_AT or (names is not None and not isinstance(names, frozenset)):
        return _build_versions(entries, names)  # small, or a name set that may change: not shared
    return _versions.get((entries, names), lambda: _build_versions(entries, names))


def _build_versions(entries: Mapping[str, Entry], names: AbstractSet[str] | None) -> dict[str, str]:
    if names is None:
        return {n: e.version for n, e in entries.items()}
    if len(names) < len(entries):
        return {n: e.version for n in names if (e := entries.get(n)) is not None}
    return {n: e.version for n, e in entries.items() if n in names}


def equal_versions(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """``a == b`` for version maps, at once for the same map or the same shared layers."""
    if a is b:
        return True
    if len(a) != len(b):
        return False
    if (
        isinstance(a, Layered)
        and isinstance(b, Layered)
        and len(a.layers) == len(b.layers)
        and all(x is y or x == y for x, y in zip(a.layers, b.layers, strict=True))
    ):
        return True
    return a == b


_changed_layers: IdentityMemo[tuple[str, ...]] = IdentityMemo()


def changed_versions(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Names of ``new`` whose version ``old`` lacks or holds at another version (what a full-state
    response changes for the client); layer by layer for layered maps, each shared pair diffed once
    (a name moving layers is listed: harmless, as in ``changed_names``)."""
    if old is new:
        return []
    if not old:
        return list(new)
    if isinstance(old, Layered) and isinstance(new, Layered) and len(old.layers) == len(new.layers):
        out: list[str] = []
        for a, b in zip(old.layers, new.layers, strict=True):
            out.extend(_changed_pair(a, b))
        return out
    return [n for n, v in new.items() if old.get(n) != v]


def _changed_pair(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[str, ...] | list[str]:
    if old is new:
        return ()
    if len(new) < SHARE_AT:
        return [n for n, v in new.items() if old.get(n) != v]
    return _changed_layers.get((old, new), lambda: tuple(n for n, v in new.items() if old.get(n) != v))


def names_within(held: Mapping[str, str], present: Mapping[str, Entry]) -> bool:
    """Every name of ``held`` is in ``present`` (layer by layer for layered maps)."""
    if not held:
        return True
    if (
        isinstance(held, Layered)
        and isinstance(present, Layered)
        and len(held.layers) == len(present.layers)
        and all(h.keys() <= p.keys() for h, p in zip(held.layers, present.layers, strict=True))
    ):
        return True
    return all(n in present for n in held)


_subscribed: IdentityMemo[list[str]] = IdentityMemo()


def subscribed_sorted(names: AbstractSet[str], entries: Mapping[str, Entry]) -> list[str]:
    """The sorted names of ``names`` that ``entries`` holds, one shared list per (name set, map) pair
    (streams subscribing to the same names share the interned set). Never mutate the result."""
    if len(names) < SHARE_AT or not isinstance(names, frozenset):
        return sorted(n for n in names if n in entries)
    return _subscribed.get((names, entries), lambda: sorted(n for n in names if n in entries))


_targets: IdentityMemo[dict[str, str]] = IdentityMemo()


def eds_targets(clusters: Mapping[str, Entry], claims: Mapping[str, Entry]) -> Mapping[str, str]:
    """CLA name -> cluster name for every EDS cluster of ``clusters`` whose CLA ``claims`` holds (what a
    first CDS response makes a stream wait for); one shared map per pair, layer by layer for layered maps.
    Never mutate the result."""
    if isinstance(clusters, Layered):
        parts = [part for part in (eds_targets(layer, claims) for layer in clusters.layers) if part]
        if len(parts) == 1:
            return parts[0]
        merged: dict[str, str] = {}
        for part in parts:
            merged.update(part)
        return merged
    if len(clusters) < SHARE_AT:
        return _build_targets(clusters, claims)
    return _targets.get((clusters, claims), lambda: _build_targets(clusters, claims))


def _build_targets(clusters: Mapping[str, Entry], claims: Mapping[str, Entry]) -> dict[str, str]:
    return {e.eds_service: n for n, e in clusters.items() if e.eds_service is not None and e.eds_service in claims}
