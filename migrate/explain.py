"""``meshxds explain``: why a proxy has a destination or not, in a few lines ending in the decisive reason.

A destination is asked for as a cluster name, ``[MeshService|MeshMultiZoneService] NAME[:PORT]``, a
``kuma.io/service`` (``kuma.io/service=NAME`` or a bare name), a VIP (``IP[:PORT]``) or a hostname
(``NAME.mesh``, a generated ``...svc.mesh.local``). Every verdict comes from the translator's own checks
(``MeshOutbounds.legacy_skip``, ``resource_skip``, ``own_inbound_collisions``, ``explicit``), so the
explanation is about what is served, not a second reading of Kuma's rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from meshxds.migrate.inputs import Input, InputError
from meshxds.migrate.side import Side
from meshxds.resources.match import DataplaneIndex, serves
from meshxds.resources.model import (
    NAMESPACE_LABEL,
    SERVICE_TAG,
    Dataplane,
    MeshMultiZoneService,
    MeshService,
    MeshServicesMode,
    MultiZonePort,
    Port,
)
from meshxds.translators.endpoints import matched_mesh_services
from meshxds.translators.outbounds import ACCEPTED_PROTOCOLS, LEGACY, Destination, Outbound, Skip


@dataclass
class Target:
    """One destination the query names: its Destination (None when Kuma builds no cluster) and VIP outbounds."""

    label: str
    dest: Destination | None
    outbounds: list[Outbound] = field(default_factory=list)
    resource: MeshService | MeshMultiZoneService | None = None
    port: Port | MultiZonePort | None = None
    service: str = ""  # the kuma.io/service of a legacy destination


@dataclass(frozen=True)
class Explanation:
    node: str
    query: str
    present: bool
    lines: tuple[str, ...]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def explain(inp: Input, node: str, query: str) -> Explanation:
    """Raises ``InputError`` for an unknown node; an unknown destination is an answer (absent)."""
    dp = inp.catalog.dataplane(node)
    if dp is None:
        raise InputError([f"unknown node {node!r}; known nodes: {', '.join(inp.catalog.node_ids()) or '(none)'}"])
    side = Side(inp, dp.mesh)
    lines = [f"{node}: mesh {dp.mesh}, meshServices.mode {side.mode.value}; {_proxy_settings(dp)}"]
    targets = find(side, dp, query)
    if not targets:
        lines.append(f"=> absent: nothing in mesh {dp.mesh} is named {query!r} (cluster, MeshService, "
                     "kuma.io/service, VIP or hostname)")  # fmt: skip
        return Explanation(node, query, False, tuple(lines))
    present = False
    for t in targets:
        has, reasons = _verdict(side, dp, t)
        present = present or has
        lines += [f"{t.label}:", *(f"  {r}" for r in reasons)]
    return Explanation(node, query, present, tuple(lines))


def _proxy_settings(dp: Dataplane) -> str:
    tp = dp.networking.transparent_proxying
    if tp is None or not dp.transparent:
        return f"no transparent proxy, {len(dp.networking.outbound)} networking.outbound[] entries"
    parts = ["transparent proxy"]
    if tp.reachable_services:
        parts.append(f"reachableServices {', '.join(tp.reachable_services)}")
    if tp.reachable_backends is not None:
        refs = [f"{r.kind} {r.name or r.labels}" + (f":{r.port}" if r.port else "") for r in tp.reachable_backends.refs]
        parts.append(f"reachableBackends [{', '.join(refs)}]")
    return ", ".join(parts)


# --------------------------------------------------------------------------- finding what the query names


def _targets(side: Side, dp: Dataplane) -> list[Target]:
    """Every destination of the mesh (and of ``dp``'s explicit outbounds), with its VIP outbounds."""
    ob = side.translator.outbounds
    out: list[Target] = []
    legacy: dict[str, Target] = {}
    for o in ob.legacy_outbounds:
        d = o.destination
        legacy[d.service] = Target(side.label(d), d, [o], service=d.service)
    services = {i.service for d in side.view.dataplanes for i in d.networking.inbound if i.service}
    for service in sorted(services - legacy.keys()):  # no VIP outbound (Exclusive): still explainable
        legacy_dest = ob.legacy({SERVICE_TAG: service})
        legacy[service] = Target(side.label(legacy_dest), legacy_dest, [], service=service)
    out += legacy.values()
    resources: list[MeshService | MeshMultiZoneService] = [*side.view.mesh_services, *side.view.multizone_services]
    for res in resources:
        for port in res.spec.ports:
            dest = ob.resource(res, port)
            obs = [o for o in ob.resource_outbounds if dest is not None and o.destination is dest]
            label = side.label(dest) if dest is not None else f"{res.kind} {res.display_name}:{port.port}"
            out.append(Target(label, dest, obs, res, port))
    for o in ob.explicit(dp):  # tag subsets and explicit backendRefs of a proxy without transparent proxy
        hit = next((t for t in out if t.dest is o.destination), None)
        if hit is None:
            hit = Target(side.label(o.destination), o.destination, service=o.destination.service)
            out.append(hit)
        hit.outbounds.append(o)
    return out


def find(side: Side, dp: Dataplane, query: str) -> list[Target]:
    """The destinations ``query`` names, most specific form first."""
    targets = _targets(side, dp)
    q = query.strip()
    by_cluster = [t for t in targets if t.dest is not None and q in (t.dest.cluster, t.dest.kri)]
    if by_cluster:
        return by_cluster
    kind, _, rest = q.rpartition(" ")
    if q.startswith(f"{SERVICE_TAG}="):
        return [t for t in targets if t.service and t.dest is not None and t.dest.kind == LEGACY
                and t.service == q.split("=", 1)[1] and len(t.dest.tags) == 1]  # fmt: skip
    host, _, port = rest.partition(":")
    hits = [t for t in targets if _names(t, kind, host, port)]
    if hits:
        return hits
    return [t for t in targets if _addressed(side, t, host, port)]


def _names(t: Target, kind: str, name: str, port: str) -> bool:
    if t.resource is not None:
        if kind and kind != t.resource.kind:
            return False
        if name not in (t.resource.name, t.resource.display_name):
            return False
        return not port or (t.port is not None and port in (str(t.port.port), t.port.name))
    if kind and kind not in (SERVICE_TAG, "Legacy"):
        return False
    return bool(t.service) and t.service == name and t.dest is not None and len(t.dest.tags) == 1 and not port


def _addressed(side: Side, t: Target, host: str, port: str) -> bool:
    """A VIP or a DNS name: the name's address as Kuma's DNS answers it, then the outbound on it."""
    domains = {name: addr for addr, names in side.vip_domains for name in names}
    address = domains.get(host, host)
    return any(o.address == address and (not port or str(o.port) == port) for o in t.outbounds)


# --------------------------------------------------------------------------- verdicts


def _verdict(side: Side, dp: Dataplane, t: Target) -> tuple[bool, list[str]]:
    lines = _where(side, t) + _entries(side, dp, t)
    mine = side.outbounds(dp.node_id)
    if t.dest is not None:
        got = [o for o in mine if o.destination is t.dest]
        if got:
            lines += _endpoint_lines(side, t)
            at = ", ".join(f"{o.address}:{o.port}" for o in got)
            return True, [*lines, f"=> present: cluster {t.dest.cluster}, outbound {at}"]
    return False, [*lines, f"=> absent: {_why_absent(side, dp, t)}"]


def _where(side: Side, t: Target) -> list[str]:
    """What the destination is made from: a MeshService's selector and matched Dataplanes, a legacy service's."""
    lines: list[str] = []
    res = t.resource
    if isinstance(res, MeshService) and res.is_local:
        sel = json.dumps(res.spec.selector.model_dump(by_alias=True, exclude_none=True), sort_keys=True)
        picked = DataplaneIndex(side.view.dataplanes).selected(res)
        lines.append(f"local MeshService; selector {sel} matches {len(picked)} Dataplane(s)"
                     + (f": {', '.join(d.name for d in picked)}" if picked else ""))  # fmt: skip
    elif isinstance(res, MeshService):
        lines.append(f"synced from zone {res.zone} (state {res.spec.state.value}): endpoints are that zone's "
                     "ZoneIngress, with mTLS on")  # fmt: skip
    elif isinstance(res, MeshMultiZoneService):
        members = matched_mesh_services(side.view, res)
        lines.append(f"combines {len(members)} MeshService(s): "
                     + (", ".join(f"{m.display_name} (zone {m.zone})" for m in members) or "none"))  # fmt: skip
    elif t.service:
        dps = [d.name for d in side.view.dataplanes if any(i.service == t.service for i in d.networking.inbound)]
        lines.append(f"served by inbounds of {len(dps)} Dataplane(s): {', '.join(dps)}")
    vips = ", ".join(f"{o.address}:{o.port}" for o in t.outbounds) or "none"
    lines.append(f"VIP/explicit outbounds in the mesh: {vips}")
    return lines


def _entries(side: Side, dp: Dataplane, t: Target) -> list[str]:
    """The proxy's reachableServices/reachableBackends entries (or explicit backendRefs) that name it."""
    tp = dp.networking.transparent_proxying
    if t.dest is None or tp is None:
        return []
    if t.dest.kind == LEGACY:
        if not tp.reachable_services:
            return []
        named = [f"[{n}]" for n, s in enumerate(tp.reachable_services) if s == t.dest.service]
        return [f"reachableServices{''.join(named)} names it" if named else "not in reachableServices"]
    if tp.reachable_backends is None:
        return []
    namespace = dp.labels.get(NAMESPACE_LABEL, "")
    kris = (t.dest.kri, t.dest.kri_resource)
    refs = tp.reachable_backends.refs
    hits = [
        f"refs[{n}]" for n, ref in enumerate(refs) if side.translator.outbounds.resolve_ref(ref, namespace) & set(kris)
    ]
    return [
        f"reachableBackends {', '.join(hits)} select it"
        if hits
        else f"none of the {len(refs)} reachableBackends refs selects it"
    ]


def _endpoint_lines(side: Side, t: Target) -> list[str]:
    assert t.dest is not None
    eps = side.endpoints(t.dest)
    lines = [f"{len(eps)} endpoint(s)" + (": " + ", ".join(f"{e.address}:{e.port}" for e in eps) if eps else "")]
    sick = _unhealthy(side, t)
    if sick:
        lines.append(f"left out as not healthy: {', '.join(sick)}")
    return lines


def _unhealthy(side: Side, t: Target) -> list[str]:
    """Inbounds that would serve the destination but are not Ready (Kuma's ``GetHealthyInbounds``)."""
    out = []
    picked: list[Dataplane] = []
    if isinstance(t.resource, MeshService) and t.resource.is_local:
        picked = DataplaneIndex(side.view.dataplanes).selected(t.resource)
    for dp in side.view.dataplanes:
        for i in dp.networking.inbound:
            if i.healthy:
                continue
            if isinstance(t.resource, MeshService) and t.resource.is_local and isinstance(t.port, Port):
                if any(dp is p for p in picked) and serves(i, t.port):
                    out.append(f"{dp.name}:{i.port} ({i.state.value})")
            elif t.service and i.service == t.service:
                out.append(f"{dp.name}:{i.port} ({i.state.value})")
    return out


def _why_absent(side: Side, dp: Dataplane, t: Target) -> str:
    ob = side.translator.outbounds
    if t.dest is None:
        protocol = t.port.app_protocol if t.port is not None else ""
        return f"appProtocol {protocol!r} is not one of {', '.join(p for p in ACCEPTED_PROTOCOLS if p)}: no cluster"
    if ob.resource_gate(dp)[0] == Skip.NO_TRANSPARENT_PROXY:  # the translator's own test, not a copy
        if t.outbounds and any(o in ob.explicit(dp) for o in t.outbounds):
            return "its explicit outbound's address:port is one of the proxy's own inbounds"
        return Skip.NO_TRANSPARENT_PROXY.value + ", and none of them leads here"
    vips = [o for o in t.outbounds if o not in ob.explicit(dp)]
    if not vips:
        if t.dest.kind == LEGACY and side.mode == MeshServicesMode.EXCLUSIVE:
            return "mode Exclusive: Kuma builds no kuma.io/service VIP outbounds (use its MeshService)"
        if t.resource is not None and not t.resource.status.vips:
            return "the resource has no status.vips, so no outbound"
        return "no VIP outbound leads to it (a clashing VIP:port went to another destination)"
    collisions = ob.own_inbound_collisions(dp)
    for o in vips:
        skip = ob.legacy_skip(dp, o) if t.dest.kind == LEGACY else ob.resource_skip(dp, o)
        if skip is not None:
            return skip.value
    if all((o.address, o.port) in collisions for o in vips):
        return "its VIP:port is one of the proxy's own inbound addresses (Kuma skips it)"
    return "not selected"
