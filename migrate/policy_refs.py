"""Reference scanners for routes and policies: what their ``targetRef``s and ``backendRefs`` lead to in one load.

Registered per kind with ``references.register`` (importing this module is enough). Every answer comes from
the functions that serve the mesh, so the plan cannot drift from the snapshots:

- top-level ``targetRef`` naming a ``kuma.io/service`` (legacy MeshService/MeshServiceSubset, MeshSubset by
  that tag): the proxies ``translators.rules.applies_to`` selects. Kuma selects them by inbound tags in every
  mode (``matchers/dataplane.go``), so these keep working; the seeds' step 5 still moves them off the tag.
- ``to[].targetRef``: per destination cluster, the proxies whose outbound the entry is relevant to
  (``resources.targeting.resolve_to`` + ``rules.Entry.relevant``, as ``ResourceRules.Compute`` decides). A
  MeshService by name without ``sectionName`` is a ``kuma.io/service`` until a MeshService of that name exists,
  and an Exclusive mesh has no legacy VIP outbounds for it to apply to.
- route ``backendRefs``: the clusters ``translators.routes.backend_dests`` sends to. A MeshService without
  ``port``/``sectionName`` (and MeshServiceSubset) is always a ``kuma.io/service`` (Kuma's ``resolve.BackendRef``);
  the seeds' step 3 says routes must be moved to MeshService/MeshMultiZoneService.

A reference that is a ``kuma.io/service`` in a load says which (``Reference.services``); the plan then suggests
the MeshService/MeshMultiZoneService ports serving the same endpoints (``references.replacements``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from meshxds.migrate.references import Reference, Resolver, Services, reference_at, register
from meshxds.migrate.side import Side
from meshxds.resources import policies as p
from meshxds.resources.loader import Loaded
from meshxds.resources.model import SERVICE_TAG
from meshxds.resources.targeting import resolve_backend, resolve_to, to_entries
from meshxds.translators.routes import backend_dests
from meshxds.translators.rules import Entry, applies_to
from meshxds.translators.targeting import legacy_name

LEGACY_TOP_KINDS = ("MeshService", "MeshServiceSubset")
DATAPLANE_INSTEAD = "kind Dataplane with labels"  # how Kuma 2.x selects proxies without kuma.io/service


def describe(ref: p.TargetRef) -> str:
    """A ref as one short line: ``MeshService backend sectionName 8080``, ``MeshSubset {...}``."""
    out = f"{ref.kind} {ref.name or pairs(ref.labels) or pairs(ref.tags)}".rstrip()
    if ref.namespace:
        out += f" namespace {ref.namespace}"
    if ref.section_name:
        out += f" sectionName {ref.section_name}"
    if isinstance(ref, p.PolicyBackendRef) and ref.port is not None:
        out += f" port {ref.port}"
    if ref.tags and ref.name:
        out += f" tags {pairs(ref.tags)}"
    return out


def pairs(tags: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((tags or {}).items()))


# --------------------------------------------------------------------------- top-level targetRef


def top_service(ref: p.TargetRef) -> str:
    """The ``kuma.io/service`` a top-level targetRef selects proxies by ("" when it does not)."""
    if ref.kind in LEGACY_TOP_KINDS:
        return ref.name or ""
    if ref.kind == "MeshSubset":
        return (ref.tags or {}).get(SERVICE_TAG, "")
    return ""


def selected_proxies(policy: p.AnyPolicy) -> Resolver:
    """The proxies the policy applies to (Kuma's ``matchers/dataplane.go``)."""

    def resolve(side: Side) -> frozenset[str]:
        return frozenset(dp.node_id for dp in side.view.dataplanes if applies_to(policy, dp))

    return resolve


# --------------------------------------------------------------------------- to[].targetRef


def entry_in(side: Side, policy: p.AnyPolicy, index: int, to: Any) -> Entry:
    targets, _ = resolve_to(side.view.mesh_services, side.view.multizone_services, policy, to.target_ref)
    return Entry(policy, index, to, tuple(targets))


def to_destinations(policy: p.AnyPolicy, index: int, to: Any) -> Resolver:
    """``"<cluster> on <proxies>"`` per destination the entry is relevant to, on the proxies it applies to."""

    def resolve(side: Side) -> frozenset[str]:
        entry = entry_in(side, policy, index, to)
        on: dict[str, set[str]] = defaultdict(set)
        for dp in side.view.dataplanes:
            if not applies_to(policy, dp):
                continue
            for ob in side.outbounds(dp.node_id):
                dest = ob.destination
                if entry.relevant(dest.kri, dest.kri_resource, legacy_name(dest)):
                    on[dest.cluster].add(dp.node_id)
        return frozenset(f"{cluster} on {', '.join(sorted(nodes))}" for cluster, nodes in on.items())

    return resolve


def to_services(policy: p.AnyPolicy, index: int, to: Any) -> Services:
    """The ``kuma.io/service`` the entry names in the load (none once a MeshService of that name exists)."""
    return lambda side: tuple(t.legacy for t in entry_in(side, policy, index, to).targets if t.kind == "Legacy")


# --------------------------------------------------------------------------- backendRefs


def backend_clusters(policy: p.AnyPolicy, ref: p.PolicyBackendRef) -> Resolver:
    def resolve(side: Side) -> frozenset[str]:
        splits, _ = backend_dests(side.view, side.translator.outbounds, policy, [ref])
        return frozenset(s.dest.cluster for s in splits)

    return resolve


def backend_services(policy: p.AnyPolicy, ref: p.PolicyBackendRef) -> Services:
    def services(side: Side) -> tuple[str, ...]:
        res = resolve_backend(side.view.mesh_services, side.view.multizone_services, policy, ref)
        return tuple(dict(b.legacy)[SERVICE_TAG] for b in res.backends if b.legacy)

    return services


def backend_refs(policy: p.AnyPolicy) -> Iterator[tuple[str, p.PolicyBackendRef]]:
    """(field, ref) of every ``rules[].default.backendRefs`` entry of a MeshHTTPRoute or MeshTCPRoute."""
    if not isinstance(policy, (p.MeshHTTPRoute, p.MeshTCPRoute)):
        return
    for i, to in enumerate(to_entries(policy)):  # HTTPTo or TCPTo: both have rules[].default.backendRefs
        for j, rule in enumerate(to.rules):
            for k, ref in enumerate(rule.default.backend_refs or ()):
                yield f"spec.to[{i}].rules[{j}].default.backendRefs[{k}]", ref


# --------------------------------------------------------------------------- the scanner


def scan_policy(item: Loaded) -> Iterator[Reference]:
    """Every destination a route or policy names, and each top-level ``kuma.io/service`` selector."""
    policy: p.AnyPolicy = item.resource  # type: ignore[assignment]
    top = policy.spec.target_ref
    if top is not None and top_service(top):
        resolve = selected_proxies(policy)
        yield reference_at(item, "spec.targetRef", describe(top), resolve, True, instead=DATAPLANE_INSTEAD)
    for i, to in enumerate(to_entries(policy)):
        if to.target_ref.kind in ("Mesh", "MeshHTTPRoute"):
            continue  # names no destination
        field = f"spec.to[{i}].targetRef"
        resolve = to_destinations(policy, i, to)
        yield reference_at(item, field, describe(to.target_ref), resolve, services=to_services(policy, i, to))
    for field, ref in backend_refs(policy):
        legacy = ref.kind in ("MeshService", "MeshServiceSubset") and not ref.references_real_object()
        resolve = backend_clusters(policy, ref)
        yield reference_at(item, field, describe(ref), resolve, legacy, backend_services(policy, ref))


for _kind in p.POLICY_KINDS:
    register(_kind, scan_policy)
