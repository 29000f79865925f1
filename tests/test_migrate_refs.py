"""``migrate plan`` on route and policy references: what breaks or changes meaning, and what to name instead.

Kuma v2.14.3 behaviour pinned here (read from its source):
* a ``to[].targetRef`` MeshService by name without ``sectionName`` is a ``kuma.io/service`` until a MeshService
  of that name exists (``pkg/plugins/policies/core/rules/resolve/targetref.go``), and an Exclusive mesh has no
  legacy VIP outbounds for it to apply to (``pkg/xds/context/mesh_context_builder.go``: ``VIPOutbounds`` only
  when ``MeshServicesMode() != Exclusive``);
* a top-level ``MeshService``/``MeshSubset`` by ``kuma.io/service`` selects proxies by inbound tags in every
  mode (``pkg/plugins/policies/core/matchers/dataplane.go``): a legacy usage that keeps working;
* a route ``backendRef`` MeshService without ``port`` is a legacy ref (``resolve/backendref.go``
  ``ReferencesRealObject``), and its cluster is still built in Exclusive because the endpoint map is
  (``mesh_context_builder.go`` ``BuildEdsEndpointMap`` is not guarded by the mode;
  ``pkg/plugins/policies/core/xds/meshroute/listeners.go`` ``handleLegacyBackendRef``);
* the generator makes no MeshService for a ``kuma.io/service`` that is not a DNS-1035 name
  (``pkg/core/resources/apis/meshservice/generate/generator.go``), so such a name stays legacy in every mode.
The seeds' migration steps 3 (routes: required) and 5 (``targetRef.kind: MeshService``: use the real name).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from meshxds.cli.main import main
from meshxds.migrate import policy_refs
from meshxds.migrate.plan import BREAKS, CHANGES, RESOLVES, UNCHANGED, ReferenceChange, make_plan
from meshxds.migrate.references import SCANNERS
from meshxds.migrate.render import render_text
from meshxds.resources.model import MeshServicesMode as Mode
from meshxds.resources.policies import POLICY_KINDS

GOLDEN = Path(__file__).parent / "golden-migrate" / "modes"
ROUTES = "input/40-routes.yaml"
MS_BACKEND = ["MeshMultiZoneService backend:8080", "MeshService backend:8080"]


def _refs(frm: Mode, to: Mode) -> dict[tuple[str, str], dict[str, Any]]:
    plan = json.loads((GOLDEN / "expected" / f"{frm.value}-to-{to.value}.json").read_text())
    return {(r["resource"], r["field"]): r for r in plan["references"] if r["file"] == ROUTES}


def test_every_route_and_policy_kind_is_scanned() -> None:
    for kind in POLICY_KINDS:
        assert policy_refs.scan_policy in SCANNERS[kind], kind


def test_to_target_ref_by_service_name_changes_meaning_when_meshservices_appear() -> None:
    """Disabled → Everywhere: ``MeshService backend`` without sectionName stops naming the kuma.io/service and
    names the generated MeshService: the timeout leaves the legacy outbound (and web-rs, which gets no
    MeshService outbounds) and applies to the MeshService outbound."""
    refs = _refs(Mode.DISABLED, Mode.EVERYWHERE)
    timeout = refs[("MeshTimeout default/web-timeouts", "spec.to[0].targetRef")]
    assert timeout["status"] == CHANGES and timeout["legacy"] is False and timeout["suggest"] == []
    assert timeout["before"] == ["backend on default.web, default.web-rb, default.web-rs"]
    assert timeout["after"] == ["default_backend__east_msvc_8080 on default.web, default.web-rb"]
    retry = refs[("MeshRetry default/db-retry", "spec.to[0].targetRef")]
    assert retry["status"] == RESOLVES and retry["value"] == "MeshService db sectionName 5432"


def test_rollback_to_disabled_breaks_a_real_meshservice_ref_and_suggests_from_the_meshservice_load() -> None:
    refs = _refs(Mode.EVERYWHERE, Mode.DISABLED)
    assert refs[("MeshRetry default/db-retry", "spec.to[0].targetRef")]["status"] == BREAKS
    timeout = refs[("MeshTimeout default/web-timeouts", "spec.to[0].targetRef")]
    assert timeout["status"] == CHANGES and timeout["legacy"] is True and timeout["services"] == ["backend"]
    assert timeout["suggest"] == MS_BACKEND  # taken from the load before, which has the MeshServices


def test_exclusive_keeps_legacy_backend_refs_and_top_level_selectors_but_flags_them() -> None:
    refs = _refs(Mode.REACHABLE_BACKENDS, Mode.EXCLUSIVE)
    backend = refs[("MeshHTTPRoute default/web-to-backend", "spec.to[0].rules[0].default.backendRefs[0]")]
    assert (backend["status"], backend["legacy"], backend["before"]) == (UNCHANGED, True, ["backend"])
    assert backend["services"] == ["backend"] and backend["suggest"] == MS_BACKEND
    top = refs[("MeshTimeout default/web-timeouts", "spec.targetRef")]
    assert top["value"] == "MeshSubset kuma.io/service=web" and top["status"] == UNCHANGED and top["legacy"]
    assert top["before"] == ["default.web", "default.web-rb", "default.web-rs"]
    assert top["suggest"] == [policy_refs.DATAPLANE_INSTEAD]
    # A top-level Dataplane and to[] Mesh name no kuma.io/service: not listed.
    assert ("MeshHTTPRoute default/web-to-backend", "spec.targetRef") not in refs
    assert ("MeshRetry default/db-retry", "spec.targetRef") not in refs


PAYMENTS = """
type: Dataplane
name: pay-1
mesh: default
networking:
  address: 10.0.4.1
  inbound:
    - port: 9000
      tags:
        kuma.io/service: pay_v1
        kuma.io/protocol: http
---
type: MeshTimeout
name: pay-timeout
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
    - targetRef:
        kind: MeshService
        name: pay_v1
      default:
        connectionTimeout: 2s
---
type: MeshTCPRoute
name: to-pay
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: db
        sectionName: "5432"
      rules:
        - default:
            backendRefs:
              - kind: MeshServiceSubset
                name: pay_v1
                tags:
                  version: v1
"""

PAYMENTS_SERVICE = """
type: MeshService
name: payments
mesh: default
spec:
  selector:
    dataplaneTags:
      kuma.io/service: pay_v1
  ports:
    - port: 9000
      targetPort: 9000
      appProtocol: http
"""


@pytest.fixture
def payments(tmp_path: Path) -> Path:
    """The golden mesh plus a service whose kuma.io/service (``pay_v1``) no generated MeshService takes."""
    case = tmp_path / "input"
    shutil.copytree(GOLDEN / "input", case)
    (case / "50-payments.yaml").write_text(PAYMENTS)
    return case


def _by_field(refs: tuple[ReferenceChange, ...], resource: str) -> dict[str, ReferenceChange]:
    return {r.reference.field: r for r in refs if r.reference.resource == resource}


def test_exclusive_breaks_a_policy_naming_a_service_without_meshservice(
    payments: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = make_plan([payments], "default", Mode.EXCLUSIVE, zone="east", from_mode=Mode.REACHABLE_BACKENDS)
    timeout = _by_field(plan.references, "MeshTimeout default/pay-timeout")
    to = timeout["spec.to[0].targetRef"]
    assert to.status == BREAKS and to.after == () and to.services == ("pay_v1",) and to.suggest == ()
    assert to.before == ("pay_v1 on default.web, default.web-rb",)  # web-rs reaches backend only
    assert to.reference.file.endswith("50-payments.yaml") and to.reference.document == 2
    assert timeout["spec.targetRef"].reference.value == "MeshService web" and timeout["spec.targetRef"].legacy
    text = render_text(plan)
    assert "instead: nothing serves kuma.io/service pay_v1 as a MeshService yet" in text
    route = _by_field(plan.references, "MeshTCPRoute default/to-pay")
    subset = route["spec.to[0].rules[0].default.backendRefs[0]"]
    assert subset.reference.value == "MeshServiceSubset pay_v1 tags version=v1" and subset.legacy
    assert plan.breaks
    assert main(["migrate", "plan", str(payments), "--zone", "east", "--from", "ReachableBackends",
                 "--to", "Exclusive"]) == 1  # fmt: skip
    assert "BREAKS" in capsys.readouterr().out


def test_a_meshservice_with_another_name_is_suggested_by_the_endpoints_it_serves(payments: Path) -> None:
    """The replacement is whatever MeshService serves the same endpoints, not whatever shares the name."""
    (payments / "51-payments-service.yaml").write_text(PAYMENTS_SERVICE)
    plan = make_plan([payments], "default", Mode.EXCLUSIVE, zone="east", from_mode=Mode.REACHABLE_BACKENDS)
    to = _by_field(plan.references, "MeshTimeout default/pay-timeout")["spec.to[0].targetRef"]
    assert to.status == BREAKS and to.suggest == ("MeshService payments:9000",)
    assert "instead: MeshService payments:9000" in render_text(plan)


def test_validate_warns_about_kuma_io_service_refs_in_an_exclusive_mesh(
    payments: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10 item 5 through ``meshxds validate``: the route/policy, its file and document, and the field."""
    mesh = payments / "00-mesh.yaml"
    mesh.write_text(mesh.read_text().replace("mode: Disabled", "mode: Exclusive"))
    assert main(["validate", str(payments), "--zone", "east"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "Exclusive mesh does not serve" in line]
    assert any(
        "40-routes.yaml: document 1: MeshHTTPRoute default/web-to-backend: "
        "spec.to[0].rules[0].default.backendRefs[0]: refers to kuma.io/service 'backend'" in w
        for w in warnings
    ), warnings
    assert any(
        "50-payments.yaml: document 2: MeshTimeout default/pay-timeout: spec.to[0].targetRef: "
        "refers to kuma.io/service 'pay_v1'" in w
        for w in warnings
    ), warnings
