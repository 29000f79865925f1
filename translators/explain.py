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


def kuma_rules_view(catalog: Catalog, node_id: str) -> dict[str, Any] | None:
    """The HTTP API's ``_rules`` body: :func:`rules_view` regrouped as Kuma's ``InspectRules`` (per policy kind,
    one ``toResourceRules`` item per outbound KRI with its merged ``conf`` and ``origin`` policies), plus the
    CLI's per-outbound view unchanged under ``outbounds``/``policies`` so both show the same data."""
    view = rules_view(catalog, node_id)
    dp = catalog.dataplane(node_id)
    if view is None or dp is None:
        return None
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for ob in view["outbounds"]:
        for kind, value in ob.items():
            if kind in ("kri", "cluster", "address", "protocol"):
                continue
            if kind == "MeshHTTPRoute":
                conf: dict[str, Any] = {"rules": [{k: r[k] for k in ("matches", "default")} for r in value]}
                origins = [r["origin"] for r in value]
                paths: dict[str, str] = {}
            elif kind == "MeshTCPRoute":
                conf, origins, paths = value["conf"], [value["origin"]], {}
            else:
                conf, paths = value["conf"], value["origins"]
                origins = list(paths.values())
            item = {
                "kri": ob["kri"],
                "conf": [conf],
                "origin": [{"resourceMeta": _meta(o)} for o in dict.fromkeys(sorted(origins))],
                "origins": paths,
            }
            by_kind.setdefault(kind, []).append(item)
    rules = [
        {"type": kind, "toResourceRules": items, "toRules": [], "fromRules": [], "inboundRules": [], "warnings": []}
        for kind, items in sorted(by_kind.items())
    ]
    resource = {"type": "Dataplane", "mesh": dp.mesh, "name": dp.name, "labels": dict(dp.labels)}
    return {"resource": resource, "rules": rules, "httpMatches": [], **view}


def _meta(origin: str) -> dict[str, str]:
    """``"MeshTimeout default/mt-1"`` (the origin text of :class:`~meshxds.translators.rules.Entry`) as Kuma's
    ``resourceMeta``."""
    kind, _, where = origin.partition(" ")
    mesh, _, name = where.partition("/")
    return {"type": kind, "mesh": mesh, "name": name}
