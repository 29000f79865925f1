"""Which names changed between two per-type snapshot maps, computed once per pair and shared.

Proxies share the snapshot's type maps (or the layers of a ``Layered`` map), so after one
endpoint change thousands of streams ask for the same (old map, new map) difference: it is
computed once, and each stream then looks only at the changed names it subscribes to.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

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
