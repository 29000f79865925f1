"""Which Dataplanes a MeshService selects, and which inbound serves which port (Kuma's match.go).

One index and one set of match rules serve the status updater (every inbound counts) and the
translators (healthy inbounds only), as Kuma's ``MatchDataplanesWithMeshServices`` does with its
``matchOnlyHealthy`` flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

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
            exact = [(k, v) for k, v in tags.items() if v != "*"]
            if exact:
                picked.update(n for n, inbound in self._by_tag.get(exact[0], []) if tags_match(tags, inbound.tags))
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
