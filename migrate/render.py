"""A plan as a readable text report (the default) or JSON for tooling; both are byte-stable."""

from __future__ import annotations

import json
from typing import Any

from meshxds.migrate.plan import BREAKS, KINDS, RESOLVES, UNCHANGED, Loss, Plan, ProxyChange

SHORT_TYPES = ("clusters", "listeners", "routes", "dns")


def _counts(p: ProxyChange, kind: str) -> str:
    a, d = len(p.appear[kind]), len(p.disappear[kind])
    return "=" if not a and not d else " ".join(s for s in (f"+{a}" if a else "", f"-{d}" if d else "") if s)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[n]) for r in rows) for n in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _traffic(plan: Plan, loss: Loss) -> str:
    if not plan.traffic_known:
        return ""
    f = loss.traffic
    if f is None:
        return "  [no traffic report from this proxy]"
    if not f.in_use:
        return "  [idle]"
    return f"  [IN USE: {f.requests_per_s:.2f} req/s, {f.bytes_per_s:.0f} B/s]"


def render_text(plan: Plan) -> str:
    out = [f"mesh {plan.mesh}: meshServices.mode {plan.from_mode} -> {plan.to_mode}", ""]
    rows = [["proxy", "resources", "bytes", *SHORT_TYPES]]
    for p in plan.proxies:
        rows.append(
            [
                p.node,
                f"{p.before.resources} -> {p.after.resources}",
                f"{p.before.bytes} -> {p.after.bytes}",
                *(_counts(p, k) for k in SHORT_TYPES),
            ]
        )
    out += ["Per proxy (+ appear, - disappear):", *_table(rows), ""]
    for p in plan.proxies:
        lines = [f"    - {k}: {', '.join(p.disappear[k])}" for k in SHORT_TYPES if p.disappear[k]]
        lines += [f"    + {k}: {', '.join(p.appear[k])}" for k in SHORT_TYPES if p.appear[k]]
        if lines:
            out += [f"  {p.node}", *lines]
    lost = [d for d in plan.destinations if d.lost_by]
    out += ["", "Destinations that disappear:" if lost else "Destinations that disappear: none"]
    for d in lost:
        out.append(f"  {d.destination} (cluster {d.cluster})")
        for loss in d.lost_by:
            if loss.replaced_by and loss.unreached:
                gone = f"{loss.unreached} of {loss.endpoints} endpoint(s) no longer reached"
                what = f"partly replaced by {', '.join(loss.replaced_by)} ({gone})"
            elif loss.replaced_by:
                what = f"replaced by {', '.join(loss.replaced_by)}"
            elif loss.had_endpoints:
                what = "BREAKS: nothing it keeps serves these endpoints"
            else:
                what = "had no endpoints"
            out.append(f"    {loss.node}: {what}{_traffic(plan, loss)}")
    gained = [d for d in plan.destinations if d.gained_by]
    out += ["", "Destinations that appear:" if gained else "Destinations that appear: none"]
    out += [f"  {d.destination} (cluster {d.cluster}): {', '.join(d.gained_by)}" for d in gained]
    out += ["", "References:" if plan.references else "References: none"]
    for r in plan.references:
        ref = r.reference
        if r.status == UNCHANGED:
            status = "legacy" if r.legacy else "ok"
            detail = " (a kuma.io/service usage)" if r.legacy else ""
        else:
            status = {BREAKS: "BREAKS", RESOLVES: "NEW"}.get(r.status, "CHANGES")
            detail = f" (before: {', '.join(r.before) or 'nothing'}; after: {', '.join(r.after) or 'nothing'})"
        out.append(f"  {status:7} {ref.where} = {ref.value}{detail}")
        if r.suggest:
            out.append(f"          instead: {' or '.join(r.suggest)}")
        elif r.services:
            missing = ", ".join(r.services)
            out.append(f"          instead: nothing serves kuma.io/service {missing} as a MeshService yet")
    out += ["", "Services in several zones:" if plan.multizone else "Services in several zones: none"]
    for mz in plan.multizone:
        how = (
            f"combined by MeshMultiZoneService {', '.join(mz.covered_by)}"
            if mz.covered_by
            else ("needs a MeshMultiZoneService: as MeshService a client reaches one zone only")
        )
        out.append(f"  {mz.service}: zones {', '.join(mz.zones)}; {how}")
    n = len(plan.broken_references) + len(plan.broken_losses)
    out += ["", f"{n} thing(s) break" if n else "nothing breaks"]
    if plan.traffic_known:
        busy = plan.busy_losses
        out.append(
            f"{len(busy)} disappearing destination(s) still carry traffic" if busy else "no traffic to what disappears"
        )
    return "\n".join(out) + "\n"


def as_json(plan: Plan) -> dict[str, Any]:
    return {
        "mesh": plan.mesh,
        "from": plan.from_mode,
        "to": plan.to_mode,
        "breaks": plan.breaks,
        "busy": [{"node": loss.node, "cluster": d.cluster} for d, loss in plan.busy_losses],
        "proxies": [
            {
                "node": p.node,
                "appear": {k: p.appear[k] for k in KINDS},
                "disappear": {k: p.disappear[k] for k in KINDS},
                "before": {"resources": p.before.resources, "bytes": p.before.bytes},
                "after": {"resources": p.after.resources, "bytes": p.after.bytes},
            }
            for p in plan.proxies
        ],
        "destinations": [
            {
                "destination": d.destination,
                "cluster": d.cluster,
                "kind": d.kind,
                "lostBy": [
                    {
                        "node": loss.node,
                        "replacedBy": list(loss.replaced_by),
                        "hadEndpoints": loss.had_endpoints,
                        "endpoints": loss.endpoints,
                        "unreached": loss.unreached,
                        "breaks": loss.breaks,
                        "traffic": _flow(loss),
                    }
                    for loss in d.lost_by
                ],
                "gainedBy": list(d.gained_by),
            }
            for d in plan.destinations
        ],
        "references": [
            {
                "file": r.reference.file,
                "document": r.reference.document,
                "resource": r.reference.resource,
                "field": r.reference.field,
                "value": r.reference.value,
                "legacy": r.legacy,
                "status": r.status,
                "before": list(r.before),
                "after": list(r.after),
                "services": list(r.services),
                "suggest": list(r.suggest),
            }
            for r in plan.references
        ],
        "multizone": [
            {"service": m.service, "zones": list(m.zones), "coveredBy": list(m.covered_by)} for m in plan.multizone
        ],
    }


def _flow(loss: Loss) -> dict[str, Any] | None:
    f = loss.traffic
    if f is None:
        return None
    return {"requestsPerSecond": f.requests_per_s, "bytesPerSecond": f.bytes_per_s, "inUse": f.in_use}


def render_json(plan: Plan) -> str:
    return json.dumps(as_json(plan), indent=2) + "\n"
