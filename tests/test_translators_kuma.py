"""Agreement with Kuma 2.14's own golden files (read from ../shared at test time, never copied).

Golden 05 (meshtcproute unit test) and 06 (full xDS of two real universal sidecars, Exclusive)
are compared field by field after applying our documented differences (``DIFFERENCES``), so
any other drift in names, cluster settings or endpoint shape fails here.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from meshxds.resources import load_catalog
from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.model import Dataplane, Mesh, MeshService
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.dump import to_json_dict
from tests.support.reference import KUMA_GOLDEN

pytestmark = pytest.mark.kuma_reference

GOLDEN = KUMA_GOLDEN
GOLDEN_05 = GOLDEN / "05-meshtcproute-basic-real-meshservice"
GOLDEN_06 = GOLDEN / "06-e2e-universal-exclusive-full-xds"

# Every deliberate difference from Kuma's goldens, as the README lists them.
DIFFERENCES = (
    "none for mTLS any more (transport sockets, RBAC, client-cert HCM settings match); golden 06's input has Kuma's"
    " allow-all MeshTrafficPermission (MeshTrafficPermissionAllowAllUniversal), so ours does too",
    "no inbound passthrough, admin, readiness or self_transparentproxy clusters/listeners (iptables/kuma-dp"
    " features); the outbound passthrough listeners and clusters match, except that our passthrough listeners"
    " are not bound (bindToPort: false: no iptables, sidecars share the host)",
    "outbound HTTP routes come over RDS (a RouteConfiguration resource named by KRI) instead of inline routeConfig",
)


def load_yaml_golden(path: Path) -> list[dict[str, Any]]:
    import yaml

    return [r["resource"] for r in yaml.safe_load(path.read_text())["resources"]]


def our(snapshot_json: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    key = "clusterName" if kind == "endpoints" else "name"
    out = {}
    for res in snapshot_json[kind]:
        body = {k: v for k, v in res.items() if k != "@type"}
        out[body[key]] = body
    return out


def is_subset(small: Any, big: Any) -> bool:
    """Every field of ``small`` is in ``big`` with the same value (lists element-wise)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and is_subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(is_subset, small, big))
    return bool(small == big)


# --------------------------------------------------------------------------- golden 05


def catalog_05(app_protocol: str) -> Catalog:
    """Transcribed from input.TRANSCRIBED.yaml: MeshService backend (no labels), one endpoint, one explicit outbound."""
    ms = MeshService.model_validate(
        {
            "name": "backend",
            "spec": {
                "selector": {"dataplaneTags": {"kuma.io/service": "backend"}},
                "ports": [{"name": "test-port", "port": 80, "targetPort": 8084, "appProtocol": app_protocol}],
            },
            "status": {"vips": [{"ip": "10.0.0.1"}]},
        }
    )
    backend_tags = {"kuma.io/service": "backend", "kuma.io/protocol": "http", "app": "backend"}
    backend = Dataplane.model_validate(
        {
            "name": "backend-1",
            "spec": {"networking": {"address": "192.168.0.4", "inbound": [{"port": 8084, "tags": backend_tags}]}},
        }
    )
    web_networking = {
        "address": "192.168.0.2",
        "inbound": [{"port": 80, "tags": {"kuma.io/service": "web", "kuma.io/protocol": "http"}}],
        "outbound": [{"port": 10001, "backendRef": {"kind": "MeshService", "name": "backend", "port": 80}}],
    }
    web = Dataplane.model_validate({"name": "web-01", "spec": {"networking": web_networking}})
    return Catalog(meshes={"default": MeshView(Mesh(name="default"), (backend, web), (ms,))})


def test_golden_05_cluster_name_settings_and_endpoints() -> None:
    dump = to_json_dict(snapshots_for(catalog_05("http"))["default.web-01"])
    [golden_cluster] = load_yaml_golden(GOLDEN_05 / "basic-real-meshservice.clusters.golden.yaml")
    [golden_cla] = load_yaml_golden(GOLDEN_05 / "basic-real-meshservice.endpoints.golden.yaml")
    golden_cluster.pop("@type")
    golden_cla.pop("@type")

    clusters = our(dump, "clusters")
    assert golden_cluster["name"] in clusters
    ours = clusters[golden_cluster["name"]]
    # 05 is a plugin unit test without MeshTimeout/MeshCircuitBreaker: our extras are exactly those defaults.
    http_options = ours["typedExtensionProtocolOptions"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http_options.pop("commonHttpProtocolOptions") == {
        "idleTimeout": "3600s",
        "maxConnectionDuration": "0s",
        "maxStreamDuration": "0s",
    }
    assert ours.pop("connectTimeout") == "5s"
    assert ours.pop("circuitBreakers") == {"thresholds": [{"trackRemaining": True}]}
    assert ours == golden_cluster

    assert our(dump, "endpoints") == {golden_cla["clusterName"]: golden_cla}


def test_golden_05_tcp_listener() -> None:
    """Golden 05 forces tcp_proxy with a MeshTCPRoute; a tcp port gives us the same listener."""
    dump = to_json_dict(snapshots_for(catalog_05("tcp"))["default.web-01"])
    [golden] = load_yaml_golden(GOLDEN_05 / "basic-real-meshservice.listeners.golden.yaml")
    golden.pop("@type")
    listeners = our(dump, "listeners")
    ours = listeners[golden["name"]]
    tcp = ours["filterChains"][0]["filters"][0]["typedConfig"]
    assert tcp.pop("idleTimeout") == "3600s"  # MeshTimeout default, absent from the unit test
    assert ours == golden


# --------------------------------------------------------------------------- golden 06

SETUP_06 = """
type: MeshTrafficPermission
name: allow-all
mesh: envoyconfig
spec:
  targetRef: {kind: Mesh}
  from:
    - targetRef: {kind: Mesh}
      default: {action: Allow}
---
type: Mesh
name: envoyconfig
skipCreatingInitialPolicies: ["*"]
meshServices:
  mode: Exclusive
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
---
type: Dataplane
mesh: envoyconfig
name: demo-client
networking:
  address: 172.18.0.5
  inbound:
    - port: 3000
      tags:
        kuma.io/service: demo-client
        kuma.io/zone: kuma-3          # stored tag (Kuma's dataplane manager / kuma-dp add it)
        team: client-owners
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
---
type: Dataplane
mesh: envoyconfig
name: test-server
networking:
  address: 172.18.0.6
  inbound:
    - port: 80
      servicePort: 8080
      tags:
        kuma.io/service: test-server
        kuma.io/protocol: http
        kuma.io/zone: kuma-3
        team: server-owners
        version: v1
        instance: "1"
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
"""


def redact(value: Any, key: str = "") -> Any:
    """Kuma's e2e redaction: IPs in addresses and listener names, stat prefixes."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if key == "statPrefix":
        return "STAT_PREFIX_REDACTED"
    if isinstance(value, str) and key in ("address", "addressPrefix"):
        try:
            ipaddress.ip_address(value)
            return "IP_REDACTED"
        except ValueError:
            return value
    if (
        isinstance(value, str)
        and key == "name"
        and value.count(":") == 2
        and value.split(":")[0] in ("inbound", "outbound")
        and value.split(":")[1] != "passthrough"
    ):
        direction, _, port = value.split(":")
        return f"{direction}:IP_REDACTED:{port}"
    return value


@pytest.fixture(scope="module")
def dumps_06(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("golden06")
    (folder / "setup.yaml").write_text(SETUP_06)
    result = load_catalog([folder], zone="kuma-3")
    assert result.catalog is not None, result.errors
    snaps = snapshots_for(result.catalog)
    return {node: redact(to_json_dict(snaps[f"envoyconfig.{node}"])) for node in ("demo-client", "test-server")}


def golden_06(node: str) -> dict[str, dict[str, Any]]:
    xds = json.loads((GOLDEN_06 / f"no-policies.{node}.golden.json").read_text())["xds"]
    return {url.rsplit(".", 1)[1]: resources for url, resources in xds.items()}


NODES = ("demo-client", "test-server")


@pytest.mark.parametrize("node", NODES)
def test_golden_06_meshservice_clusters(node: str, dumps_06: dict[str, dict[str, Any]]) -> None:
    golden = {n: c for n, c in golden_06(node)["Cluster"].items() if "_msvc_" in n}
    ours = {n: c for n, c in our(dumps_06[node], "clusters").items() if "_msvc_" in n}
    assert sorted(ours) == sorted(golden) == ["envoyconfig_demo-client__kuma-3_msvc_3000",
                                               "envoyconfig_test-server__kuma-3_msvc_80"]  # fmt: skip
    for name, cluster in golden.items():
        assert ours[name] == cluster, name  # transportSocket included: SNI, exact SAN, ALPN kuma


@pytest.mark.parametrize("node", NODES)
def test_golden_06_outbound_passthrough_clusters(node: str, dumps_06: dict[str, dict[str, Any]]) -> None:
    """pkg/xds/generator/transparent_proxy_generator.go: ORIGINAL_DST clusters while the Mesh allows passthrough."""
    golden = {n: c for n, c in golden_06(node)["Cluster"].items() if n.startswith("outbound:passthrough:")}
    ours = {n: c for n, c in our(dumps_06[node], "clusters").items() if n.startswith("outbound:passthrough:")}
    assert sorted(golden) == ["outbound:passthrough:ipv4", "outbound:passthrough:ipv6"]
    assert ours == golden


@pytest.mark.parametrize("node", NODES)
def test_golden_06_local_clusters(node: str, dumps_06: dict[str, dict[str, Any]]) -> None:
    golden = {n: c for n, c in golden_06(node)["Cluster"].items() if n.startswith("localhost:")}
    ours = {n: c for n, c in our(dumps_06[node], "clusters").items() if n.startswith("localhost:")}
    assert ours == golden


@pytest.mark.parametrize("node", NODES)
def test_golden_06_endpoints(node: str, dumps_06: dict[str, dict[str, Any]]) -> None:
    assert our(dumps_06[node], "endpoints") == golden_06(node)["ClusterLoadAssignment"]


@pytest.mark.parametrize("node", NODES)
def test_golden_06_listeners(node: str, dumps_06: dict[str, dict[str, Any]]) -> None:
    golden = {
        n: lis
        for n, lis in golden_06(node)["Listener"].items()
        if not n.startswith("inbound:passthrough") and "kuma:" not in n
    }
    ours = our(dumps_06[node], "listeners")
    routes = our(dumps_06[node], "routes")
    assert sorted(ours) == sorted(golden)
    for name, listener in golden.items():
        expected = copy.deepcopy(listener)  # mTLS and RBAC included (DIFFERENCES[0])
        actual = copy.deepcopy(ours[name])
        if name.startswith("outbound:passthrough:"):
            assert actual.pop("bindToPort") is False  # DIFFERENCES[1]
        for g_chain, a_chain in zip(expected["filterChains"], actual["filterChains"], strict=True):
            for g_filter, a_filter in zip(g_chain["filters"], a_chain["filters"], strict=True):
                g_cfg, a_cfg = g_filter["typedConfig"], a_filter["typedConfig"]
                if name.startswith("outbound:") and "routeConfig" in g_cfg:
                    # DIFFERENCES[2]: our routes come over RDS, by the same name (route names included).
                    inline = g_cfg.pop("routeConfig")
                    rds = a_cfg.pop("rds")
                    assert rds == {
                        "configSource": {"ads": {}, "resourceApiVersion": "V3"},
                        "routeConfigName": inline["name"],
                    }
                    assert routes[inline["name"]] == inline
        for a_chain, g_chain in zip(actual["filterChains"], expected["filterChains"], strict=True):
            assert a_chain == g_chain, f"{name}: {json.dumps(a_chain, sort_keys=True)[:3000]}"
        assert actual == expected, name
