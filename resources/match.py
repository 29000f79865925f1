"""Which Dataplanes a MeshService selects, and which inbound serves which port (Kuma's match.go).

Shared by the status updater (all inbounds) and the translators (healthy inbounds only).
"""

from __future__ import annotations

from collections.abc import Iterable

from meshxds.resources import model as m


def tags_match(selector: dict[str, str], tags: dict[str, str]) -> bool:
    """Kuma's TagSelector.Matches: every pair present, value ``*`` matches any value."""
    return all(k in tags and (v == "*" or tags[k] == v) for k, v in selector.items())


def selects(ms: m.MeshService, dp: m.Dataplane, only_healthy: bool = False) -> bool:
    """Does ``ms``'s selector pick ``dp``? An empty or missing selector picks nothing."""
    if dp.mesh != ms.mesh:
        return False
    sel = ms.spec.selector
    inbounds = [i for i in dp.networking.inbound if i.healthy or not only_healthy]
    if sel.dataplane_ref is not None:
        return sel.dataplane_ref.name == dp.name
    if sel.dataplane_tags is not None:
        return bool(sel.dataplane_tags) and any(tags_match(sel.dataplane_tags, i.tags) for i in inbounds)
    if sel.dataplane_labels is not None:
        return bool(inbounds) and tags_match(sel.dataplane_labels.match_labels, dp.labels)
    return False


def selected(ms: m.MeshService, dataplanes: Iterable[m.Dataplane], only_healthy: bool = False) -> list[m.Dataplane]:
    return [dp for dp in dataplanes if selects(ms, dp, only_healthy)]


def serves(inbound: m.Inbound, port: m.Port) -> bool:
    """Kuma's MatchInboundWithMeshServicePort: int targetPort = inbound.port, string = inbound.name."""
    target = port.target_port
    if isinstance(target, int):
        return target == inbound.port
    if isinstance(target, str):
        return target == inbound.name
    return False  # a missing targetPort behaves as 0 and matches nothing


class DataplaneIndex:
    """Dataplanes of one mesh indexed by inbound tag and label pairs, so matching N services is not N x M."""

    def __init__(self, dataplanes: Iterable[m.Dataplane]) -> None:
        self.dataplanes = list(dataplanes)
        self.by_tag: dict[tuple[str, str], list[int]] = {}
        self.by_label: dict[tuple[str, str], list[int]] = {}
        self.by_name: dict[str, list[int]] = {}
        for n, dp in enumerate(self.dataplanes):
            self.by_name.setdefault(dp.name, []).append(n)
            for pair in {(k, v) for i in dp.networking.inbound for k, v in i.tags.items()}:
                self.by_tag.setdefault(pair, []).append(n)
            for pair in dp.labels.items():
                self.by_label.setdefault(pair, []).append(n)

    def candidates(self, ms: m.MeshService) -> list[m.Dataplane]:
        """A superset of what ``ms`` selects, in load order."""
        sel = ms.spec.selector
        hits: list[int] | None = None
        if sel.dataplane_ref is not None:
            hits = self.by_name.get(sel.dataplane_ref.name, [])
        elif sel.dataplane_tags:
            pairs = [p for p in sel.dataplane_tags.items() if p[1] != "*"]
            if pairs:
                hits = min((self.by_tag.get(p, []) for p in pairs), key=len)
        elif sel.dataplane_labels is not None and sel.dataplane_labels.match_labels:
            hits = min((self.by_label.get(p, []) for p in sel.dataplane_labels.match_labels.items()), key=len)
        if hits is None:
            return self.dataplanes
        return [self.dataplanes[n] for n in hits]

    def selected(self, ms: m.MeshService, only_healthy: bool = False) -> list[m.Dataplane]:
        return [dp for dp in self.candidates(ms) if selects(ms, dp, only_healthy)]
