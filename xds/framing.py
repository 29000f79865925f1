"""A response's resources framed once per shared snapshot map, and reused by every stream.

A SotW response is version_info, then every resource as field 2 (its cached ``Any`` bytes behind
a tag and a length), then type_url, nonce and control_plane. Only the version and the nonce differ
between streams that get the same resources, so the framed resources of a shared map (a type map
every proxy with the same outbounds holds, or the shared layer of a ``Layered`` map) are built once:
the block, the name order and each resource's offset in it. A stream's response is then slices of
that block around its own few resources, byte-identical to framing each resource (sorted by name).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping

from meshxds.codec.encode import length_delimited
from meshxds.snapshots.snapshot import Entry, Layered
from meshxds.xds.diff import SHARE_AT, IdentityMemo

# Framed maps kept, least recently used dropped: a frame block is as big as its map's encoded resources and
# keeps the map alive, so only the maps in use (a few per snapshot generation) are worth keeping.
CACHE_SIZE = 64
RESOURCES = 2  # DiscoveryResponse.resources

Part = bytes | memoryview


class Framed:
    """The resources of one map, sorted by name and framed as DiscoveryResponse field 2."""

    __slots__ = ("_index", "block", "names", "offsets", "view")

    def __init__(self, entries: Mapping[str, Entry]) -> None:
        self.names = sorted(entries)
        frames = [length_delimited(RESOURCES, entries[n].any) for n in self.names]
        self.offsets = [0] * (len(frames) + 1)
        pos = 0
        for i, frame in enumerate(frames, 1):
            pos += len(frame)
            self.offsets[i] = pos
        self.block = b"".join(frames)
        self.view = memoryview(self.block)
        self._index: dict[str, int] | None = None

    def part(self, start: int, end: int) -> Part:
        """The frames of names[start:end] (no copy)."""
        if start == 0 and end == len(self.names):
            return self.block
        return self.view[self.offsets[start] : self.offsets[end]]

    def index(self, name: str) -> int | None:
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.names)}
        return self._index.get(name)


_framed: IdentityMemo[Framed] = IdentityMemo(CACHE_SIZE)


def framed(entries: Mapping[str, Entry]) -> Framed:
    """The frames of a shared, never mutated snapshot map, built once while it is in use."""
    return _framed.get((entries,), lambda: Framed(entries))


def each(entries: Mapping[str, Entry], names: Iterable[str]) -> list[Part]:
    """``names`` of ``entries`` framed one by one (a map only this stream uses, or a few names)."""
    return [length_delimited(RESOURCES, entries[n].any) for n in names]


def whole(entries: Mapping[str, Entry]) -> list[Part]:
    """Every resource of a snapshot map (shared by the streams of every proxy that holds it), in name order.

    A big map comes from its shared frames; a ``Layered`` map with one big layer is that layer's frames
    cut where the names of its small (per-proxy) layers fall in the name order."""
    if isinstance(entries, Layered):
        big = [layer for layer in entries.layers if len(layer) >= SHARE_AT]
        if len(big) != 1:
            return each(entries, sorted(entries))
        shared = framed(big[0])
        own = sorted(n for layer in entries.layers if layer is not big[0] for n in layer)
        parts: list[Part] = []
        start = 0
        for name in own:
            end = bisect_left(shared.names, name, start)
            if end > start:
                parts.append(shared.part(start, end))
            parts.append(length_delimited(RESOURCES, entries[name].any))
            start = end
        if start < len(shared.names):
            parts.append(shared.part(start, len(shared.names)))
        return parts
    if len(entries) < SHARE_AT:
        return each(entries, sorted(entries))
    return [framed(entries).block]


def some(entries: Mapping[str, Entry], names: list[str]) -> list[Part]:
    """``names`` (sorted, all in ``entries``) of a shared snapshot map, in that order."""
    if len(names) == len(entries) and not isinstance(entries, Layered):
        return whole(entries)
    if isinstance(entries, Layered) or len(entries) < SHARE_AT or len(names) < SHARE_AT:
        return each(entries, names)
    shared = framed(entries)
    parts: list[Part] = []
    for name in names:
        i = shared.index(name)
        parts.append(shared.part(i, i + 1) if i is not None else length_delimited(RESOURCES, entries[name].any))
    return parts
