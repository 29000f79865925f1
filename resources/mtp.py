"""MeshTrafficPermission in Kuma 2.14's ``targetRef`` + ``from[]`` form, and the inbound rules it yields.

Model (in ``model.py``): ``pkg/plugins/policies/meshtrafficpermission/api/v1alpha1/meshtrafficpermission.go``.
Rules: Kuma sorts the ``from[]`` entries of the policies that select a proxy by specificity
(Mesh < MeshSubset < MeshService < MeshServiceSubset, then by policy name), collects every tag they
name, and for each combination of "tag = value" / "tag != value" keeps the action of the last entry
whose tags all hold (``pkg/plugins/policies/core/rules/inbound``, ``subsetutils``). The result is a
list of (subset, action) rules; the translators render them as RBAC principals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product

from meshxds.resources.model import (
    SERVICE_TAG,
    Action,
    Dataplane,
    Inbound,
    MeshService,
    MeshTrafficPermission,
    PolicyTargetRef,
)

TOP_KINDS = ("Mesh", "MeshSubset", "MeshService", "Dataplane")
FROM_KINDS = ("Mesh", "MeshSubset", "MeshService", "MeshServiceSubset")
_SPECIFICITY = {"Mesh": 0, "MeshSubset": 1, "MeshService": 2, "MeshServiceSubset": 3}


def check_mtp(mtp: MeshTrafficPermission) -> list[tuple[str, str]]:
    """(field, message) pairs, after Kuma's ``validator.go`` for the ``from[]`` form."""
    out: list[tuple[str, str]] = []
    ref = mtp.spec.target_ref
    if ref is not None and ref.kind not in TOP_KINDS:
        out.append(("spec.targetRef.kind", "value is not supported: must be one of " + ", ".join(TOP_KINDS)))
    if not mtp.spec.from_:
        out.append(("spec.from", "needs at least one item"))
    for i, item in enumerate(mtp.spec.from_ or []):
        at = f"spec.from[{i}]"
        kind = item.target_ref.kind
        if kind not in FROM_KINDS:
            out.append((f"{at}.targetRef.kind", "value is not supported: must be one of " + ", ".join(FROM_KINDS)))
        if kind in ("MeshService", "MeshServiceSubset") and not item.target_ref.name:
            out.append((f"{at}.targetRef.name", "must be set with kind " + kind))
        if item.default.action is None:
            out.append((f"{at}.default.action", "must be defined"))
    return out


@dataclass(frozen=True)
class Tag:
    key: str
    value: str
    negated: bool = False


@dataclass(frozen=True)
class Rule:
    """Traffic from a client whose identity matches every tag of ``subset`` gets ``action``."""

    subset: tuple[Tag, ...]
    action: Action


def _from_tags(ref: PolicyTargetRef) -> dict[str, str]:
    if ref.kind == "MeshSubset":
        return dict(ref.tags or {})
    if ref.kind == "MeshService":
        return {SERVICE_TAG: ref.name or ""}
    if ref.kind == "MeshServiceSubset":
        return {**(ref.tags or {}), SERVICE_TAG: ref.name or ""}
    return {}


def selects(mtp: MeshTrafficPermission, dp: Dataplane, inbound: Inbound, services: Sequence[MeshService]) -> bool:
    """Whether the policy's top-level targetRef selects this inbound of ``dp`` (no targetRef: the Mesh)."""
    ref = mtp.spec.target_ref
    if ref is None or ref.kind == "Mesh":
        return True
    if ref.kind == "MeshSubset":
        return all(inbound.tags.get(k) == v for k, v in (ref.tags or {}).items())
    if ref.kind == "Dataplane":
        if ref.name is not None and ref.name != dp.name:
            return False
        return all(dp.labels.get(k) == v for k, v in (ref.labels or {}).items())
    if ref.kind == "MeshService":
        if inbound.service == ref.name:
            return True
        return any(ms.name == ref.name and _selects_inbound(ms, inbound) for ms in services)
    return False


def _selects_inbound(ms: MeshService, inbound: Inbound) -> bool:
    tags = ms.spec.selector.dataplane_tags
    return tags is not None and all(inbound.tags.get(k) == v for k, v in tags.items())


def inbound_rules(policies: Iterable[MeshTrafficPermission]) -> list[Rule]:
    """Kuma's from-rules for one inbound, given the policies that select it."""
    items: list[tuple[int, str, int, dict[str, str], Action]] = []
    for mtp in policies:
        for i, item in enumerate(mtp.spec.from_ or []):
            if item.default.action is None:
                continue
            kind = item.target_ref.kind
            items.append((_SPECIFICITY.get(kind, 0), mtp.name, i, _from_tags(item.target_ref), item.default.action))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    tags = sorted({(k, v) for *_, subset, _ in items for k, v in subset.items()})
    rules: list[Rule] = []
    seen: set[tuple[Tag, ...]] = set()
    for signs in product((True, False), repeat=len(tags)):
        positive = {k: v for (k, v), s in zip(tags, signs, strict=True) if s}
        if len([k for (k, _), s in zip(tags, signs, strict=True) if s]) != len(positive):
            continue  # two different values for one key cannot both hold
        action: Action | None = None
        for *_, subset, act in items:
            if all(positive.get(k) == v for k, v in subset.items()):
                action = act
        if action is None:
            continue
        # A negation on a key that already has a positive value is implied: leave it out.
        subset_tags = tuple(
            Tag(k, v, negated=not s) for (k, v), s in zip(tags, signs, strict=True) if s or k not in positive
        )
        if subset_tags not in seen:
            seen.add(subset_tags)
            rules.append(Rule(subset_tags, action))
    return rules
