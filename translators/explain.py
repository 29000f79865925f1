"""Kuma's ``_rules`` inspect view for one proxy: per outbound (by KRI), the merged value of every
policy kind and the policy each value came from, plus the routes that apply (pure, for ``meshxds rules``)."""

from __future__ import annotations

from typing import Any

from meshxds.resources.catalog import Catalog
from meshxds.translators.outbounds import LEGACY, Outbound
from meshxds.translators.policies import MODELS
from meshxds.translators.proxy import MeshTranslator
from meshxds.translators.rules import ProxyRules, dump, policies_for


def proxy_outbounds(translator: MeshTranslator, node_id: str) -> list[Outbound]:
    view = translator.view
    dp = next(d for d in view.dataplanes if d.node_id == node_id)
    if dp.networking.transparent_proxying is None:
        return translator.outbounds.explicit(dp)
    return translator.outbounds.select_legacy(dp) + translator.outbounds.select_resources(dp)


def rules_view(catalog: Catalog, node_id: str) -> dict[str, Any] | None:
    """``{node, policies, outbounds: [{kri, cluster, address, <Kind>: {conf, origins}, ...}]}``; None if unknown."""
    dp = catalog.dataplane(node_id)
    if dp is None:
        return None
    view = catalog.meshes[dp.mesh]
    translator = MeshTranslator(view, catalog)
    policies = policies_for(view, dp)
    rules = ProxyRules(view, policies)
    outbounds: list[dict[str, Any]] = []
    for ob in proxy_outbounds(translator, node_id):
        dest = ob.destination
        legacy = dest.service if dest.kind == LEGACY else ""
        entry: dict[str, Any] = {
            "kri": dest.kri or f"kuma.io/service={dest.service}",
            "cluster": dest.cluster,
            "address": f"{ob.address}:{ob.port}",
            "protocol": dest.protocol,
        }
        for kind in MODELS:
            merged = rules.compute(kind, dest.kri, dest.kri_resource, legacy)
            if merged is not None:
                entry[kind] = {"conf": dict(merged.conf), "origins": dict(sorted(merged.origins.items()))}
        http = rules.http_rules(dest.kri, dest.kri_resource, legacy)
        if http:
            entry["MeshHTTPRoute"] = [
                {
                    "matches": [dump(m) for m in rule.matches],
                    "default": dump(rule.default),
                    "origin": f"MeshHTTPRoute {rule.origin.mesh}/{rule.origin.name}",
                }
                for rule in http
            ]
        tcp = rules.tcp_backends(dest.kri, dest.kri_resource, legacy)
        if tcp is not None:
            merged, route = tcp
            entry["MeshTCPRoute"] = {"conf": dict(merged.conf), "origin": f"MeshTCPRoute {route.mesh}/{route.name}"}
        outbounds.append(entry)
    return {
        "node": node_id,
        "policies": [f"{p.kind} {p.mesh}/{p.name}" for p in policies],
        "outbounds": outbounds,
    }
