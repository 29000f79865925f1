"""``migrate plan``: golden plans for every mode transition, and the rules behind breaks.

Kuma v2.14.3 behaviour pinned here (read from its source):
* which outbounds a proxy gets per mode: ``pkg/xds/sync/dataplane_proxy_builder.go`` ``resolveVIPOutbounds``
  (reachableServices-only proxies get no MeshService outbounds; ReachableBackends mode needs reachableBackends);
* Exclusive drops legacy VIP outbounds and their DNS names: ``pkg/xds/context/mesh_context_builder.go``
  (``MeshServicesMode() != Exclusive`` guards ``VIPOutbounds``);
* DNS names: ``pkg/xds/topology/dns.go`` ``VIPOutbounds`` (``<service>.mesh``) and
  ``pkg/xds/generator/dns_generator.go`` (only addresses the proxy has an outbound for);
* explicit outbounds by tags stay in every mode: ``dataplane_proxy_builder.go`` ``asOutbounds``.

Golden files: ``tests/golden-migrate/<case>/input`` (and ``zone``) → ``expected/<from>-to-<to>.{txt,json}``;
regenerate with ``make golden`` and review the diff.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from meshxds.cli.main import main
from meshxds.migrate.plan import BREAKS, RESOLVES, make_plan
from meshxds.migrate.render import render_json, render_text
from meshxds.resources.loader import Loaded
from meshxds.resources.model import MeshServicesMode as Mode

GOLDEN = Path(__file__).parent / "golden-migrate"
STEPS = [Mode.DISABLED, Mode.EVERYWHERE, Mode.REACHABLE_BACKENDS, Mode.EXCLUSIVE]
TRANSITIONS = [*pairwise(STEPS), *pairwise(STEPS[::-1])]


@pytest.mark.parametrize("step", TRANSITIONS, ids=[f"{a.value}-to-{b.value}" for a, b in TRANSITIONS])
def test_golden_plan(step: tuple[Mode, Mode], update_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    case = GOLDEN / "modes"
    monkeypatch.chdir(case)  # paths in the plan are as the user typed them
    plan = make_plan(["input"], "default", step[1], zone=(case / "zone").read_text().strip(), from_mode=step[0])
    outputs = {"txt": render_text(plan), "json": render_json(plan)}
    for ext, text in outputs.items():
        path = case / "expected" / f"{step[0].value}-to-{step[1].value}.{ext}"
        if update_golden:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"{path.relative_to(GOLDEN)} differs (run make golden and review)"


def _plan(frm: Mode, to: Mode) -> dict[str, Any]:
    case = GOLDEN / "modes"
    return json.loads((case / "expected" / f"{frm.value}-to-{to.value}.json").read_text())


def test_disabled_to_everywhere_adds_meshservices_and_breaks_nothing() -> None:
    plan = _plan(Mode.DISABLED, Mode.EVERYWHERE)
    assert plan["breaks"] is False
    web = next(p for p in plan["proxies"] if p["node"] == "default.web")
    assert "default_backend__east_msvc_8080" in web["appear"]["clusters"]
    assert "backend.svc.mesh.local" in web["appear"]["dns"]
    assert web["after"]["bytes"] > web["before"]["bytes"] and web["after"]["resources"] > web["before"]["resources"]
    assert not any(p["disappear"]["clusters"] for p in plan["proxies"])
    # web-rs sets reachableServices only: Kuma gives it no MeshService outbounds, so nothing changes for it.
    web_rs = next(p for p in plan["proxies"] if p["node"] == "default.web-rs")
    assert not web_rs["appear"]["clusters"]
    # legacy-client's explicit backendRef to the generated MeshService db starts resolving.
    ref = next(r for r in plan["references"] if r["field"] == "networking.outbound[1].backendRef")
    assert ref["status"] == RESOLVES and ref["after"] == ["default_db__east_msvc_5432"]


def test_exclusive_breaks_legacy_only_consumers_with_file_and_field() -> None:
    plan = _plan(Mode.REACHABLE_BACKENDS, Mode.EXCLUSIVE)
    assert plan["breaks"] is True
    broken = {(r["resource"], r["field"]) for r in plan["references"] if r["status"] == BREAKS}
    assert broken == {
        ("Mesh default", "logging.backends[0].conf.address"),  # logstash.mesh has no VIP in Exclusive
        ("Dataplane default/web-rs", "networking.transparentProxying.reachableServices[0]"),
    }
    legacy = next(d for d in plan["destinations"] if d["cluster"] == "backend")
    by_node = {loss["node"]: loss for loss in legacy["lostBy"]}
    assert by_node["default.web"]["replacedBy"] == ["MeshMultiZoneService backend:8080", "MeshService backend:8080"]
    assert by_node["default.web-rs"]["breaks"] is True
    web = next(p for p in plan["proxies"] if p["node"] == "default.web")
    assert "backend.mesh" in web["disappear"]["dns"] and "outbound:240.0.0.1:80" in web["disappear"]["listeners"]
    # The explicit tag outbound keeps working in Exclusive (asOutbounds), but stays listed as legacy.
    tags = next(r for r in plan["references"] if r["field"].startswith("networking.outbound[0].tags"))
    assert tags["status"] == "unchanged" and tags["legacy"] is True


def test_multizone_service_without_meshmultizoneservice_is_listed() -> None:
    plan = _plan(Mode.REACHABLE_BACKENDS, Mode.EXCLUSIVE)
    assert plan["multizone"] == [
        {"service": "backend", "zones": ["east", "west"], "coveredBy": ["backend"]},
        {"service": "db", "zones": ["east", "west"], "coveredBy": []},
    ]


def test_round_trip_every_step_back_to_disabled_removes_what_was_added() -> None:
    up = _plan(Mode.DISABLED, Mode.EVERYWHERE)
    down = _plan(Mode.EVERYWHERE, Mode.DISABLED)
    # Listener names carry VIPs, which depend on load history (Kuma allocates them once), so they may differ.
    for a, b in zip(up["proxies"], down["proxies"], strict=True):
        for kind in ("clusters", "endpoints", "routes", "dns"):
            assert a["appear"][kind] == b["disappear"][kind] and a["disappear"][kind] == b["appear"][kind], a["node"]
        assert a["before"]["resources"] == b["after"]["resources"]


def test_cli_exit_codes_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = GOLDEN / "modes" / "input"
    assert main(["migrate", "plan", str(case), "--zone", "east", "--from", "Disabled", "--to", "Everywhere"]) == 0
    assert capsys.readouterr().out.endswith("nothing breaks\n")
    assert main(["migrate", "plan", str(case), "--zone", "east", "--to", "Exclusive", "-o", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["breaks"] is True
    assert main(["migrate", "plan", str(case), "--mesh", "nope", "--to", "Exclusive"]) == 2
    assert "error: --mesh 'nope': no such mesh; known meshes: default" in capsys.readouterr().err
    bad = tmp_path / "bad"
    shutil.copytree(case, bad)
    (bad / "20-clients.yaml").write_text("type: Dataplane\nname: x\nmesh: default\nnetworking: {address: 1}\n")
    assert main(["migrate", "plan", str(bad), "--zone", "east", "--to", "Exclusive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("error: ") for line in err) and "20-clients.yaml" in err[0]


def test_rollback_counts_endpoints_only_the_multizone_service_reached() -> None:
    """Back from Exclusive, the MeshMultiZoneService's west endpoint (through the ZoneIngress) is reached by no
    legacy destination: a partial replacement, not a full one."""
    plan = _plan(Mode.EXCLUSIVE, Mode.REACHABLE_BACKENDS)
    mz = next(d for d in plan["destinations"] if d["cluster"] == "default_backend___mzsvc_8080")
    web = next(loss for loss in mz["lostBy"] if loss["node"] == "default.web")
    assert web["replacedBy"] == ["kuma.io/service backend"] and (web["unreached"], web["endpoints"]) == (1, 2)
    assert web["breaks"] is False


def test_a_new_kind_plugs_into_the_reference_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any kind can register a scanner (routes and policies do, ``migrate/policy_refs.py``); here a stand-in
    scanner on MeshMultiZoneService reports a (hypothetical) use of the legacy name ``backend.mesh`` and the
    plan judges it like any other."""
    from meshxds.migrate import references as refs

    def scanner(item: Loaded) -> Iterator[refs.Reference]:
        yield refs.Reference(item.origin.file, item.origin.index, "MeshMultiZoneService backend", "spec.x",
                             "backend.mesh", refs.mesh_legacy_name("backend.mesh"), legacy=True)  # fmt: skip

    monkeypatch.setitem(refs.SCANNERS, "MeshMultiZoneService", [scanner])
    plan = make_plan([GOLDEN / "modes" / "input"], "default", Mode.EXCLUSIVE, zone="east", from_mode=Mode.EVERYWHERE)
    hit = next(r for r in plan.references if r.reference.field == "spec.x")
    assert hit.status == BREAKS and hit.before == ("backend",) and hit.after == ()
