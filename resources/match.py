"""Which Dataplanes a MeshService selects, and which inbound serves which port (Kuma's match.go).

One index and one set of match rules serve the status updater (every inbound counts) and the
translators (healthy inbounds only), as Kuma's ``MatchDataplanesWithMeshServices`` does with its
``matchOnlyHealthy`` flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshxds.resources import model as m


def tags_match(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Kuma's TagSelector.Matches: every pair present, value ``*`` matches any value."""
    return all(k in tags and (v == "*" or tags[k] == v) for k, v in selector.items())


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kuma's LabelSelector.Matches: every pair present with the very same value (no wildcard)."""
    return all(labels.get(k) == v for k, v in selector.items())


def healthy_inbounds(dp: m.Dataplane) -> list[m.Inbound]:
    return [i for i in dp.networking.inbound if i.healthy]


def serves(inbound: m.Inbound, port: m.Port) -> bool:
    """Kuma's MatchInboundWithMeshServicePort: int targetPort = inbound.port, string = inbound.name."""
    target = port.target_port
    if isinstance(target, int):
        return target == inbound.port
    if isinstance(target, str):
        return target == inbound.name
    return False  # a missing targetPort behaves as 0 and matches nothing


class DataplaneIndex:
    """Dataplanes of one mesh that have inbounds (healthy ones, with ``only_healthy``), indexed so
    selector matching costs per match, not per Dataplane (Kuma's ``indexDpsForMatching``)."""

    def __init__(self, dataplanes: Iterable[m.Dataplane], only_healthy: bool = False) -> None:
        self.entries: list[tuple[m.Dataplane, list[m.Inbound]]] = []
        self._by_tag: dict[tuple[str, str], list[tuple[int, m.Inbound]]] = defaultdict(list)
        self._by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._by_name: dict[str, int] = {}
        for dp in dataplanes:
            inbounds = healthy_inbounds(dp) if only_healthy else list(dp.networking.inbound)
            if not inbounds:
                continue  # Kuma matches only Dataplanes with (healthy) inbounds
            n = len(self.entries)
            self.entries.append((dp, inbounds))
            self._by_name[dp.name] = n
            for pair in dp.labels.items():
                self._by_label[pair].append(n)
            for inbound in inbounds:
                for pair in inbound.tags.items():
                    self._by_tag[pair].append((n, inbound))

    def select(self, selector: m.Selector) -> list[tuple[m.Dataplane, list[m.Inbound]]]:
        """The matched Dataplanes, each with its indexed inbounds, in load order. An empty tag
        selector or no selector picks nothing; an empty label selector picks every Dataplane."""
        picked: set[int] = set()
        if selector.dataplane_ref is not None:
            n = self._by_name.get(selector.dataplane_ref.name)
            if n is not None:
                picked.add(n)
        elif selector.dataplane_tags is not None:
            tags = selector.dataplane_tags
            exact = next(((k, v) for k, v in tags.items() if v != "*"), None)
            if exact is not None:
                picked.update(n for n, inbound in self._by_tag.get(exact, ()) if tags_match(tags, inbound.tags))
            elif tags:
                picked.update(
                    n for n, (_, inbounds) in enumerate(self.entries) if any(tags_match(tags, i.tags) for i in inbounds)
                )
        elif selector.dataplane_labels is not None:
            wanted = selector.dataplane_labels.match_labels
            if not wanted:
                picked.update(range(len(self.entries)))
            else:
                first = next(iter(wanted.items()))
                picked.update(
                    n for n in self._by_label.get(first, []) if labels_match(wanted, self.entries[n][0].labels)
                )
        return [self.entries[n] for n in sorted(picked)]

    def selected(self, ms: m.MeshService) -> list[m.Dataplane]:
        return [dp for dp, _ in self.select(ms.spec.selector)]


@dataclass(frozen=True)
class Selections:
    """What each selector (by key) picked from one mesh's Dataplanes, with every inbound (the status updater's)."""

    dataplanes: tuple[m.Dataplane, ...]  # held, so their ids below stay theirs
    ids: list[int]
    picked: dict[str, tuple[m.Selector, tuple[m.Dataplane, ...]]]


def select_each(
    selectors: Mapping[str, m.Selector], dataplanes: tuple[m.Dataplane, ...], previous: Selections | None = None
) -> Selections:
    """``DataplaneIndex(dataplanes).select`` for every selector, updated from ``previous`` when it can be.

    Matching is per Dataplane, so when the Dataplanes differ from the previous ones by a few that came
    or went (the others the very same objects, in the same order), an unchanged selector keeps what it
    picked from those that stayed and is matched against the newcomers only: one changed Dataplane costs
    a match per selector, not an index of the whole mesh.
    """
    added: list[m.Dataplane] = []
    gone: set[int] = set()
    ids = list(map(id, dataplanes))
    if previous is not None and previous.ids != ids:
        before, now = set(previous.ids), set(ids)
        gone = before - now
        added = [dp for dp in dataplanes if id(dp) not in before]
        stayed_in_order = [i for i in previous.ids if i in now] == [i for i in ids if i in before]
        if not stayed_in_order or 4 * (len(added) + len(gone)) > len(dataplanes):
            previous = None  # reordered, or a big change: index everything
    full: DataplaneIndex | None = None
    newcomers = DataplaneIndex(added) if added else None
    position: dict[int, int] = {}
    picked: dict[str, tuple[m.Selector, tuple[m.Dataplane, ...]]] = {}
    for key, selector in selectors.items():
        hit = previous.picked.get(key) if previous is not None else None
        if hit is None or not (hit[0] is selector or hit[0] == selector):
            full = full or DataplaneIndex(dataplanes)
            picked[key] = (selector, tuple(dp for dp, _ in full.select(selector)))
            continue
        kept = hit[1]
        if gone and any(id(dp) in gone for dp in kept):
            kept = tuple(dp for dp in kept if id(dp) not in gone)
        new = [dp for dp, _ in newcomers.select(selector)] if newcomers is not None else []
        if new:
            position = position or {id(dp): n for n, dp in enumerate(dataplanes)}
            kept = tuple(sorted((*kept, *new), key=lambda dp: position[id(dp)]))
        picked[key] = (selector, kept)
    return Selections(dataplanes, ids, picked)
