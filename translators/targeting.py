"""Routes and policies for one mesh's outbounds: what ``MeshTranslator`` asks about each outbound.

Proxies to which the same policies apply share one ``ProxyRules`` (keyed by the policies' names), so
the outbound work stays per (destination, policy set), not per proxy. Everything here is pure and
memoised for one build only; cross-build reuse goes through ``content`` keys in ``proxy.py``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from meshxds.codec.encode import encode_message
from meshxds.resources.catalog import MeshView
from meshxds.resources.model import Dataplane
from meshxds.resources.policies import TCPRuleConf
from meshxds.translators import protos as pb
from meshxds.translators.dataplanes import is_http
from meshxds.translators.outbounds import LEGACY, Destination, MeshOutbounds, Outbound
from meshxds.translators.policies import (
    DestinationPolicies,
    cluster_overrides,
    destination_policies,
    route_settings,
    tcp_settings,
)
from meshxds.translators.routes import (
    DEFAULT_WEIGHT,
    Split,
    backend_dests,
    http_route_configuration,
    plan_http_routes,
    tcp_proxy_target,
    tcp_splits,
)
from meshxds.translators.rules import ProxyRules, policies_for


@dataclass(frozen=True)
class OutboundPlan:
    """One outbound under one policy set: its listener kind, route configuration and needed clusters."""

    kind: str  # "http" (HCM + RDS), "tcp" (tcp_proxy) or "none" (Kuma generates no listener)
    dests: tuple[Destination, ...] = ()
    route: pb.RouteConfiguration | None = None
    tcp: dict[str, Any] = field(default_factory=dict)  # TcpProxy fields besides stat_prefix
    content: Hashable = ()


NONE = OutboundPlan("none")


def legacy_name(dest: Destination) -> str:
    return dest.service if dest.kind == LEGACY else ""


class MeshTargeting:
    """Per build: policy sets by proxy, outbound plans and cluster overrides by (destination, policy set)."""

    def __init__(self, view: MeshView, outbounds: MeshOutbounds) -> None:
        self.view = view
        self.outbounds = outbounds
        self._rules: dict[str, ProxyRules] = {}
        self._plans: dict[tuple[int, str], OutboundPlan] = {}
        self._policies: dict[tuple[int, str], DestinationPolicies] = {}

    def key(self, dp: Dataplane) -> str:
        """The names of the policies that apply to ``dp``: proxies with equal keys share every result."""
        pols = policies_for(self.view, dp)
        key = "|".join(f"{pol.kind}/{pol.name}" for pol in pols)
        if key not in self._rules:
            self._rules[key] = ProxyRules(self.view, pols)
        return key

    def rules(self, key: str) -> ProxyRules:
        return self._rules[key]

    def cluster_content(self, dest: Destination, key: str) -> Hashable:
        """Everything a destination's cluster reads: the destination and its merged policies."""
        return (dest.content(), self.policies(dest, key).content())

    def policies(self, dest: Destination, key: str) -> DestinationPolicies:
        hit = self._policies.get((id(dest), key))
        if hit is None:
            hit = destination_policies(self._rules[key], dest)
            self._policies[(id(dest), key)] = hit
        return hit

    def cluster(self, dest: Destination, key: str) -> dict[str, Any]:
        return cluster_overrides(dest, self.policies(dest, key))

    def plan(self, outbound: Outbound, key: str) -> OutboundPlan:
        dest = outbound.destination
        hit = self._plans.get((id(dest), key))
        if hit is None:
            hit = self._plan(dest, key)
            self._plans[(id(dest), key)] = hit
        return hit

    def _plan(self, dest: Destination, key: str) -> OutboundPlan:
        """Kuma: MeshHTTPRoute owns an HTTP outbound if it has rules, else MeshTCPRoute, else the default route."""
        rules = self._rules[key]
        legacy = legacy_name(dest)
        http_rules = rules.http_rules(dest.kri, dest.kri_resource, legacy) if is_http(dest.protocol) else []
        tcp = rules.tcp_backends(dest.kri, dest.kri_resource, legacy)
        if is_http(dest.protocol) and (http_rules or tcp is None):
            routes = plan_http_routes(self.view, self.outbounds, dest, http_rules)
            if not routes:
                return NONE
            config = http_route_configuration(dest, routes, route_settings(self.policies(dest, key), dest.protocol))
            needed = [s.dest for r in routes for s in r.splits] + [d for r in routes for d in r.mirrors if d]
            dests = tuple(dict.fromkeys(needed))
            # content: the route configuration's own bytes (it depends on the services its backends resolve to)
            return OutboundPlan("http", dests, config, content=(dest.content(), encode_message(config)))
        if tcp is not None:
            merged, route = tcp
            refs = merged.model(TCPRuleConf).backend_refs or []
            splits = tcp_splits(backend_dests(self.view, self.outbounds, route, refs)[0])
        else:
            splits = (Split(dest, DEFAULT_WEIGHT),)
        if not splits:
            return NONE  # listeners_backendrefs.go: no backends left, no listener
        fields = {**tcp_proxy_target(splits), **tcp_settings(self.policies(dest, key))}
        dests = tuple(dict.fromkeys(s.dest for s in splits))
        content = (dest.content(), encode_message(pb.TcpProxy(stat_prefix="", **fields)))
        return OutboundPlan("tcp", dests, None, fields, content)
