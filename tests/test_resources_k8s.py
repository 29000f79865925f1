"""Kubernetes manifests: Kuma CRD form, and v1 Service → MeshService compared with Kuma's golden 07."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.resources import load_catalog
from meshxds.resources.k8s import Options
from tests.resources.util import services, write
from tests.support.reference import KUMA_GOLDEN

GOLDEN = KUMA_GOLDEN / "07-k8s-service-to-meshservice"
# Labels the zone control plane adds when storing (compute.go), absent from the controller's golden output.
STORE_LABELS = {
    "kuma.io/display-name": "example",
    "k8s.kuma.io/namespace": "demo",
    "kuma.io/origin": "zone",
    "kuma.io/zone": "default",
}


@pytest.mark.kuma_reference
@pytest.mark.parametrize(("case", "inbound_tags"), [("01", True), ("skip-inbound-tags", False)])
def test_service_conversion_matches_kuma_golden(case: str, inbound_tags: bool) -> None:
    result = load_catalog([GOLDEN / f"{case}.resources.yaml"], k8s=Options(inbound_tags=inbound_tags))
    assert result.catalog is not None, [str(e) for e in result.errors]
    (expected,) = yaml.safe_load((GOLDEN / f"{case}.meshservice.yaml").read_text())["items"]
    (ms,) = result.catalog.meshes["default"].mesh_services
    meta: dict[str, Any] = expected["metadata"]
    assert (ms.display_name, ms.namespace, ms.name) == (meta["name"], meta["namespace"], "example.demo")
    assert ms.labels == meta["labels"] | STORE_LABELS
    spec = ms.spec.model_dump(by_alias=True, exclude_none=True, include={"ports", "selector"})
    assert spec == expected["spec"]
    assert [v.model_dump() for v in ms.status.vips] == expected["status"]["vips"]


@pytest.mark.kuma_reference
def test_udp_ports_are_dropped_with_a_warning() -> None:
    result = load_catalog([GOLDEN / "01.resources.yaml"])
    assert [(w.resource, w.field, w.message) for w in result.warnings] == [
        ("Service demo/example", "spec.ports", "ignored unsupported ports: 1234/UDP")
    ]


SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: shop
  labels: {labels}
spec:
  clusterIP: {ip}
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: 80, targetPort: http, appProtocol: http}}
"""

K8S_DATAPLANE = """
apiVersion: kuma.io/v1alpha1
kind: Dataplane
mesh: default
metadata: {{name: {pod}, namespace: shop}}
spec:
  networking:
    address: {ip}
    inbound:
      - name: http
        port: 8080
        tags: {{kuma.io/service: db_shop_svc_80, app: db, k8s.kuma.io/namespace: shop}}
"""


def test_services_outside_the_mesh_disabled_meshes_and_headless(tmp_path: Path) -> None:
    docs = [
        "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {meshServices: {mode: Everywhere}}",
        "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata: {name: legacy}\n",
        SERVICE.format(name="web", labels="{kuma.io/mesh: default}", ip="10.0.0.5"),
        SERVICE.format(name="untracked", labels="{}", ip="10.0.0.6"),  # no mesh label, namespace not injected
        SERVICE.format(name="old", labels="{kuma.io/mesh: legacy}", ip="10.0.0.7"),  # mesh in Disabled mode
        SERVICE.format(name="db", labels="{kuma.io/mesh: default}", ip="None"),  # headless
        K8S_DATAPLANE.format(pod="db-0", ip="10.1.0.1"),
        K8S_DATAPLANE.format(pod="db-1", ip="10.1.0.2"),
    ]
    write(tmp_path, "k8s.yaml", "\n---\n".join(docs))
    result = load_catalog([tmp_path])
    assert result.catalog is not None, [str(e) for e in result.errors]
    found = services(result.catalog)
    assert list(found) == ["web.shop", *(n for n in found if n.startswith("db-"))]
    assert len(found) == 3
    web = found["web.shop"]
    assert web.spec.selector.dataplane_tags == {"app": "web", "k8s.kuma.io/namespace": "shop"}
    assert web.spec.ports[0].target_port == "http"
    assert [v.ip for v in web.status.vips] == ["10.0.0.5"]
    assert web.status.addresses == []  # no local hostname generator for Kubernetes services
    pods = [ms for n, ms in found.items() if n.startswith("db-")]
    assert [ms.spec.selector.dataplane_ref.name for ms in pods if ms.spec.selector.dataplane_ref] == [
        "db-0.shop",
        "db-1.shop",
    ]
    assert [[v.ip for v in ms.status.vips] for ms in pods] == [["10.1.0.1"], ["10.1.0.2"]]
    assert all(ms.labels["k8s.kuma.io/is-headless-service"] == "true" for ms in pods)
    assert all(len(ms.display_name) <= 63 and ms.display_name.startswith("db-") for ms in pods)
    db0 = result.catalog.dataplane("default.db-0.shop")
    assert db0 is not None and db0.labels["k8s.kuma.io/namespace"] == "shop"
    assert pods[0].status.dataplane_proxies is not None and pods[0].status.dataplane_proxies.healthy == 1


def test_service_in_a_missing_mesh_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """meshservice_controller.go: a Service whose mesh is not found is ignored (its MeshService deleted)."""
    write(tmp_path, "svc.yaml", SERVICE.format(name="web", labels="{kuma.io/mesh: nope}", ip="10.0.0.5"))
    result = load_catalog([tmp_path])
    assert result.errors == ()
    assert [str(e).replace(str(tmp_path) + "/", "") for e in result.warnings] == [
        "svc.yaml: document 1: Service shop/web: metadata.labels.kuma.io/mesh: "
        "skipped: mesh 'nope' does not exist (Kuma makes no MeshService)"
    ]
