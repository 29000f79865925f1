"""Kuma's outbound rules: which policies apply to a proxy and what they merge to per destination.

- ``applies_to``: a policy's top-level ``targetRef`` choosing proxies (Mesh, Dataplane by name or
  labels, MeshSubset by inbound tags, legacy MeshService/MeshServiceSubset by ``kuma.io/service``).
- ``ProxyRules``: the ``to[]`` entries of the policies that apply, sorted as Kuma's ``outbound.Sort``
  (top-level kind, Dataplane specificity, ``to`` kind, sectionName last, then reversed display name so
  the alphabetically first policy merges last and wins), and ``compute`` = Kuma's
  ``ResourceRules.Compute``: every relevant entry (Mesh, the whole service, the exact section) merged
  in that order (JSON merge patch, lists replaced), with the policy each value came from.
- MeshHTTPRoute rules merge by their ``matches`` (``mergeValuesByKey``): equal matches merge and take
  the later position; each entry's rules are reversed before and the result after (``Transform``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshxds.resources import model as m
from meshxds.resources import policies as p
from meshxds.resources.catalog import MeshView
from meshxds.resources.match import tags_match
from meshxds.resources.targeting import Target, resolve_to, to_entries
from meshxds.translators.names import kri

# ``api/common/v1alpha1/targetref.go`` order: merged first = least specific.
KIND_ORDER = {
    "Mesh": 1,
    "Dataplane": 2,
    "MeshSubset": 3,
    "MeshGateway": 4,
    "MeshService": 5,
    "MeshExternalService": 6,
    "MeshMultiZoneService": 7,
    "MeshServiceSubset": 8,
    "MeshHTTPRoute": 9,
}


def proxy_type(dp: m.Dataplane) -> str:
    return "Gateway" if dp.networking.gateway is not None else "Sidecar"


def applies_to(policy: p.AnyPolicy, dp: m.Dataplane) -> bool:
    """Does the policy's top-level ``targetRef`` select this proxy? (``matchers/egress``-free subset.)"""
    ref = policy.spec.target_ref
    if ref is None:
        return True
    if ref.proxy_types and proxy_type(dp) not in ref.proxy_types:
        return False
    if ref.kind == "Mesh":
        return True
    if ref.kind == "Dataplane":
        if ref.name:
            namespace = ref.namespace if ref.namespace is not None else policy.namespace
            name = dp.labels.get(m.DISPLAY_NAME_LABEL, dp.name)
            return name == ref.name and dp.labels.get(m.NAMESPACE_LABEL, "") == namespace
        return all(dp.labels.get(k) == v for k, v in (ref.labels or {}).items())
    if ref.kind == "MeshSubset":
        tags = ref.tags or {}
        return not tags or any(tags_match(tags, i.tags) for i in dp.networking.inbound)
    if ref.kind in ("MeshService", "MeshServiceSubset"):
        tags = {m.SERVICE_TAG: ref.name or "", **(ref.tags or {})}
        return any(tags_match(tags, i.tags) for i in dp.networking.inbound)
    return False


@dataclass(frozen=True)
class Entry:
    """One ``to[]`` entry of one policy, with what its targetRef resolved to."""

    policy: p.AnyPolicy
    index: int
    to: Any
    targets: tuple[Target, ...]

    @property
    def origin(self) -> str:
        return f"{self.policy.kind} {self.policy.mesh}/{self.policy.name}"

    def relevant(self, dest_kri: str, dest_resource: str, legacy: str) -> bool:
        """Kuma's ``isRelevant``: the Mesh, the whole service (any section), or the exact section."""
        for t in self.targets:
            if t.kind == "Mesh":
                return True
            if t.kind == "Legacy" and legacy and t.legacy == legacy:
                return True
            if t.service is not None and not legacy:
                if t.section and kri(t.service, t.section) == dest_kri:
                    return True
                if not t.section and kri(t.service) == dest_resource:
                    return True
        return False


def sort_key(entry: Entry) -> tuple[int, int, int, int]:
    top = entry.policy.spec.target_ref
    top_kind = KIND_ORDER.get(top.kind, 0) if top else KIND_ORDER["Mesh"]
    dp_rank = 0
    if top is not None and top.kind == "Dataplane":
        dp_rank = (2 if top.name else 1 if top.labels is not None else 0) * 2 + (1 if top.section_name else 0)
    ref = entry.to.target_ref
    section = 1 if ref.kind == "MeshService" and ref.section_name else 0
    return (top_kind, dp_rank, KIND_ORDER.get(ref.kind, 0), section)


def sorted_entries(entries: Sequence[Entry]) -> list[Entry]:
    """``outbound.Sort``: stable by specificity, ties by display name descending (first name merges last)."""
    by_name = sorted(entries, key=lambda e: e.policy.display_name, reverse=True)
    return sorted(by_name, key=sort_key)


@dataclass(frozen=True)
class Merged:
    """A merged ``default`` (Kuma's JSON, camelCase) and, per leaf path, the policy that set it."""

    conf: Mapping[str, Any]
    origins: Mapping[str, str]
    entries: tuple[Entry, ...] = ()

    def model(self, cls: type[Any]) -> Any:
        return cls.model_validate(self.conf)


def merge_into(out: dict[str, Any], origins: dict[str, str], patch: Mapping[str, Any], origin: str, path: str) -> None:
    """RFC 7396 merge patch (what Kuma's ``merge.Confs`` does), recording who set each leaf."""
    for key, value in patch.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            merge_into(out[key], origins, value, origin, where)
        elif isinstance(value, Mapping):
            out[key] = {}
            for stale in [k for k in origins if k.startswith(where + ".")]:
                del origins[stale]
            merge_into(out[key], origins, value, origin, where)
        else:
            out[key] = value
            for stale in [k for k in origins if k.startswith(where + ".")]:
                del origins[stale]
            origins[where] = origin


def dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


@dataclass(frozen=True)
class HTTPRouteRule:
    """One merged MeshHTTPRoute rule and the route it came from (its KRI names the Envoy routes)."""

    matches: tuple[p.Match, ...]
    default: p.HTTPRuleConf
    origin: p.MeshHTTPRoute


@dataclass
class ProxyRules:
    """The rules of every policy that applies to one proxy, per kind, ready for ``compute``."""

    view: MeshView
    policies: tuple[p.AnyPolicy, ...]
    by_kind: dict[str, list[Entry]] = field(default_factory=dict)
    # Merge results by (what, the relevant entries' ids): destinations that the same entries reach (every one, for
    # Mesh-wide policies such as Kuma's defaults) share one merge. The entries live as long as ``by_kind``.
    _merged: dict[tuple[str, tuple[int, ...]], Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Entry]] = {}
        for policy in self.policies:
            for i, to in enumerate(to_entries(policy)):
                targets, _ = resolve_to(self.view.mesh_services, self.view.multizone_services, policy, to.target_ref)
                grouped.setdefault(policy.kind, []).append(Entry(policy, i, to, tuple(targets)))
        self.by_kind = {kind: sorted_entries(entries) for kind, entries in grouped.items()}

    def relevant(self, kind: str, dest_kri: str, dest_resource: str, legacy: str) -> list[Entry]:
        return [e for e in self.by_kind.get(kind, ()) if e.relevant(dest_kri, dest_resource, legacy)]

    def compute(self, kind: str, dest_kri: str, dest_resource: str, legacy: str = "") -> Merged | None:
        """The merged ``default`` of ``kind`` for a destination (KRI with section, without, or legacy name)."""
        entries = self.relevant(kind, dest_kri, dest_resource, legacy)
        if not entries:
            return None
        key = (kind, tuple(map(id, entries)))
        hit: Merged | None = self._merged.get(key)
        if hit is None:
            hit = self._merged[key] = self._merge(entries)
        return hit

    @staticmethod
    def _merge(entries: list[Entry]) -> Merged:
        conf: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for e in entries:
            merge_into(conf, origins, dump(e.to.default), e.origin, "")
        return Merged(conf, origins, tuple(entries))

    def http_rules(self, dest_kri: str, dest_resource: str, legacy: str = "") -> list[HTTPRouteRule]:
        """``mergeValuesByKey`` over the relevant MeshHTTPRoute rules, then ``Transform`` (reverse)."""
        entries = self.relevant("MeshHTTPRoute", dest_kri, dest_resource, legacy)
        key = ("MeshHTTPRoute", tuple(map(id, entries)))
        hit: list[HTTPRouteRule] | None = self._merged.get(key)
        if hit is None:
            hit = self._merged[key] = self._http_rules(entries)
        return list(hit)

    @staticmethod
    def _http_rules(entries: list[Entry]) -> list[HTTPRouteRule]:
        acc: list[tuple[str, list[tuple[p.HTTPRule, p.MeshHTTPRoute]]] | None] = []
        for e in entries:
            route: p.MeshHTTPRoute = e.policy  # type: ignore[assignment]
            for rule in reversed(e.to.rules):
                key = p.match_json(list(rule.matches))
                group = [(rule, route)]
                for n, item in enumerate(acc):
                    if item is not None and item[0] == key:
                        group = item[1] + group
                        acc[n] = None
                acc.append((key, group))
        out: list[HTTPRouteRule] = []
        for item in acc:
            if item is None:
                continue
            conf: dict[str, Any] = {}
            origins: dict[str, str] = {}
            for rule, route in item[1]:
                merge_into(conf, origins, dump(rule.default), route.name, "")
            last_rule, last_route = item[1][-1]
            out.append(HTTPRouteRule(tuple(last_rule.matches), p.HTTPRuleConf.model_validate(conf), last_route))
        out.reverse()
        return out

    def tcp_backends(self, dest_kri: str, dest_resource: str, legacy: str = "") -> tuple[Merged, p.MeshTCPRoute] | None:
        """MeshTCPRoute: the merged first rule (``rules[0].default``) and the route that set it."""
        entries = self.relevant("MeshTCPRoute", dest_kri, dest_resource, legacy)
        if not entries:
            return None
        conf: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for e in entries:
            for rule in e.to.rules[:1]:
                merge_into(conf, origins, dump(rule.default), e.origin, "")
        route: p.MeshTCPRoute = entries[-1].policy  # type: ignore[assignment]
        return Merged(conf, origins, tuple(entries)), route


def policies_for(view: MeshView, dp: m.Dataplane) -> tuple[p.AnyPolicy, ...]:
    return tuple(pol for pol in view.policies if applies_to(pol, dp))
