"""Snapshot helpers only tests need: build from hand-made resources, and a snapshot as a static bootstrap."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from meshxds.snapshots.builder import BuildCache
from meshxds.snapshots.dump import canonical, to_json_dict
from meshxds.snapshots.snapshot import SECRET, Snapshot
from meshxds.translators import ProxyResources


def build(resources: Mapping[str, ProxyResources]) -> dict[str, Snapshot]:
    """Per proxy: its own small layer over the shared layer of its outbound selection (built once)."""
    cache = BuildCache()
    out: dict[str, Snapshot] = {}
    for node_id, res in resources.items():
        shared = tuple(cache.layer(node_id, rs) for rs in res.shared_sets)
        out[node_id] = cache.layer(node_id, res.own).snapshot(node_id, shared)
    return out


def static_bootstrap(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as a static Envoy bootstrap: EDS clusters get their CLA inline, RDS routes are inlined.

    Lets tests (and ``envoy --mode validate``) check a snapshot without an ADS server.
    """
    dump = to_json_dict(snapshot)
    bare = [{k: v for k, v in r.items() if k != "@type"} for kind in ("endpoints", "routes") for r in dump[kind]]
    clas = {r["clusterName"]: r for r in bare if "clusterName" in r}
    routes = {r["name"]: r for r in bare if "clusterName" not in r}
    clusters = []
    for cluster in dump["clusters"]:
        c = {k: v for k, v in cluster.items() if k != "@type"}
        if c.get("type") == "EDS":
            del c["edsClusterConfig"]
            c["type"] = "STATIC"
            c["loadAssignment"] = clas[c["name"]]
        clusters.append(c)
    listeners = []
    for listener in dump["listeners"]:
        lis = {k: v for k, v in listener.items() if k != "@type"}
        for chain in lis.get("filterChains", ()):  # a UDP (DNS) listener has none
            for flt in chain["filters"]:
                rds = flt["typedConfig"].pop("rds", None)
                if rds is not None:
                    flt["typedConfig"]["routeConfig"] = copy.deepcopy(routes[rds["routeConfigName"]])  # no YAML aliases
        listeners.append(lis)
    node = {"id": snapshot.node_id, "cluster": snapshot.node_id.split(".")[0]}
    static: dict[str, Any] = {"clusters": clusters, "listeners": listeners}
    entries = snapshot.get(SECRET)
    if entries:  # real key material here (a dump redacts it): Envoy must load it
        secrets = {
            n: {k: v for k, v in canonical(e.message, SECRET).items() if k != "@type"} for n, e in entries.items()
        }
        static = _static_sds(static, secrets)
        static["secrets"] = [secrets[n] for n in sorted(secrets)]
    return {"node": node, "static_resources": static}


def _static_sds(value: Any, secrets: dict[str, Any]) -> Any:
    """SDS references over ADS → references to static secrets (the same name, no ``sdsConfig``)."""
    if isinstance(value, dict):
        if "sdsConfig" in value and value.get("name") in secrets:
            return {"name": value["name"]}
        return {k: _static_sds(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_static_sds(v, secrets) for v in value]
    return value
