"""Which names changed between two per-type snapshot maps, computed once per pair and shared;
and the version maps streams share to record what their clients hold.

Proxies share the snapshot's type maps (or the layers of a ``Layered`` map), so after one
endpoint change thousands of streams ask for the same (old map, new map) difference: it is
computed once, and each stream then looks only at the changed names it subscribes to.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from meshxds.snapshots.snapshot import Entry, Layered

CACHE_SIZE = 512
_cache: OrderedDict[tuple[int, int], tuple[Mapping[str, Entry], Mapping[str, Entry], frozenset[str]]] = OrderedDict()
_NONE: frozenset[str] = frozenset()


def changed_names(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> frozenset[str]:
    """Names in ``new`` that ``old`` lacks or holds at another version (removals are not listed)."""
    if old is new:
        return _NONE
    key = (id(old), id(new))
    hit = _cache.get(key)
    if hit is not None and hit[0] is old and hit[1] is new:  # the maps are kept alive, so ids are not reused
        _cache.move_to_end(key)
        return hit[2]
    if isinstance(old, Layered) and isinstance(new, Layered) and len(old.layers) == len(new.layers):
        # Names never overlap between the layers of one map, so a name whose entry is new in the
        # merged map is new or changed in its own layer (a name moving layers is listed: harmless).
        result = _NONE.union(*(changed_names(a, b) for a, b in zip(old.layers, new.layers, strict=True)))
    else:
        result = frozenset(n for n, e in new.items() if (o := old.get(n)) is None or o.version != e.version)
    _cache[key] = (old, new, result)
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return result


_versions: OrderedDict[tuple[int, int], tuple[Mapping[str, Entry], AbstractSet[str] | None, Mapping[str, str]]] = (
    OrderedDict()
)
SHARE_AT = 32  # smaller maps are cheaper to build per stream than to look up


def versions_of(entries: Mapping[str, Entry], names: AbstractSet[str] | None = None) -> Mapping[str, str]:
    """name -> version of ``entries`` (only ``names`` if given), one shared map per (map, names) pair.

    Streams record what their client holds as such a map while it is exactly this, so a stream's
    own state is what it differs on, not a copy of what every proxy holds. Never mutate the result.
    """
    if isinstance(entries, Layered) and names is None:
        return Layered(*(versions_of(layer) for layer in entries.layers))
    if len(entries) < SHARE_AT:
        return _build_versions(entries, names)
    key = (id(entries), id(names))
    hit = _versions.get(key)
    if hit is not None and hit[0] is entries and hit[1] is names:  # both kept alive, so ids are not reused
        _versions.move_to_end(key)
        return hit[2]
    result = _build_versions(entries, names)
    _versions[key] = (entries, names, result)
    if len(_versions) > CACHE_SIZE:
        _versions.popitem(last=False)
    return result


def _build_versions(entries: Mapping[str, Entry], names: AbstractSet[str] | None) -> dict[str, str]:
    if names is None:
        return {n: e.version for n, e in entries.items()}
    if len(names) < len(entries):
        return {n: e.version for n in names if (e := entries.get(n)) is not None}
    return {n: e.version for n, e in entries.items() if n in names}
