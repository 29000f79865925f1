"""The Kuma fidelity corpus: one folder per behaviour under ``tests/fidelity/``, driven by this one table test.

Each case is ``input.yaml`` (what a user gives meshxds) and ``case.yaml``:

* ``source`` — the Kuma v2.14.3 file and function or testdata the behaviour is derived from (required);
* ``behaviour`` — one line saying what Kuma does (required); ``differs`` — set when meshxds deliberately
  differs, saying why (the README's "Where meshxds differs" lists the same);
* ``zone`` — the control plane's zone (default ``default``);
* ``errors`` — the exact error lines (``<resource>: <field>: <message>``, file and document left out);
  without it the input must load;
* ``warnings`` — text each of which some warning line must contain;
* ``mesh_services`` / ``multizone_services`` — ``{[mesh/]name: fields}`` matched against the model dump (by
  alias); ``null`` fields mean the service must not exist;
* ``proxies`` — ``{node id: {clusters|endpoints|listeners|routes: {name: fields}, absent: {kind: [names]}}}``
  matched against the proxy's snapshot dump (Envoy JSON names).

Matching is by subset: a mapping matches if every expected key matches (``null`` = the key is absent),
a list if it has the same length and every item matches, a scalar if equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.resources import load_catalog
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.dump import to_json_dict

CORPUS = Path(__file__).parent / "fidelity"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "case.yaml").is_file())
KINDS = ("clusters", "endpoints", "listeners", "routes")


def mismatch(expected: Any, actual: Any, where: str = "") -> str | None:
    """Where ``actual`` fails to contain ``expected`` (None: it does)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected a mapping, got {actual!r}"
        for key, want in expected.items():
            if want is None:
                if key in actual:
                    return f"{where}.{key}: expected absent, got {actual[key]!r}"
                continue
            if key not in actual:
                return f"{where}.{key}: missing (have {sorted(actual)})"
            if found := mismatch(want, actual[key], f"{where}.{key}"):
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: expected {len(expected)} items, got {actual!r}"
        for n, (want, got) in enumerate(zip(expected, actual, strict=True)):
            if found := mismatch(want, got, f"{where}[{n}]"):
                return found
        return None
    return None if expected == actual else f"{where}: expected {expected!r}, got {actual!r}"


def short(problem: Any) -> str:
    """A problem line without its file and document (the corpus names the resource and field)."""
    return f"{problem.resource}: {problem.field}: {problem.message}" if problem.field else str(problem.message)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fidelity(case: Path) -> None:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    assert spec.get("source") and spec.get("behaviour"), "every case cites its Kuma source and says what Kuma does"
    result = load_catalog([case / "input.yaml"], zone=spec.get("zone", "default"))
    errors = [short(p) for p in result.errors]
    warnings = [short(p) for p in result.warnings]
    if "errors" in spec:
        assert errors == spec["errors"]
        return
    assert result.catalog is not None, errors
    for text in spec.get("warnings", []):
        assert any(text in w for w in warnings), f"no warning contains {text!r}: {warnings}"
    for key, attr in (("mesh_services", "mesh_services"), ("multizone_services", "multizone_services")):
        for ref, want in (spec.get(key) or {}).items():
            mesh, _, name = ref.rpartition("/")
            found = {s.name: s for s in getattr(result.catalog.meshes[mesh or "default"], attr)}
            if want is None:
                assert name not in found, f"{ref}: should not exist"
                continue
            assert name in found, f"{ref}: no such service (have {sorted(found)})"
            dump = found[name].model_dump(by_alias=True, mode="json", exclude_none=True)
            assert (problem := mismatch(want, dump, ref)) is None, problem
    snapshots = snapshots_for(result.catalog) if spec.get("proxies") else {}
    for node, facts in (spec.get("proxies") or {}).items():
        dump = to_json_dict(snapshots[node])
        for kind in KINDS:
            by_name = {r.get("name") or r.get("clusterName"): r for r in dump[kind]}
            for name, want in (facts.get(kind) or {}).items():
                assert name in by_name, f"{node}: no {kind} {name!r} (have {sorted(by_name)})"
                assert (problem := mismatch(want, by_name[name], f"{node} {name}")) is None, problem
            for name in (facts.get("absent") or {}).get(kind, []):
                assert name not in by_name, f"{node}: {kind} {name!r} should not exist"
