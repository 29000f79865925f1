"""Routes and policies on real Envoy sidecars: a client sidecar with explicit outbounds (served over ADS by our
server) and one backend sidecar per MeshService, each in front of an app that names itself (tests/support/apps.py).

What Kuma v2.14.3 promises and we check end to end:
- MeshHTTPRoute weighted ``backendRefs`` split traffic by weight (``meshhttproute/plugin/v1alpha1/listeners.go``,
  ``core/xds/meshroute`` ``MakeHTTPSplit`` → ``weighted_clusters``);
- a ``PathPrefix /v2`` match sends ``/v2`` only to its backend (``xds/configurer.go`` ``routePathMatch``);
- a RequestHeaderModifier adds a header the app sees (``xds/filters/requestheadermodifier.go``);
- a MeshTimeout on one ``sectionName`` fires on that port only (``meshtimeout/plugin/xds/configurer.go``
  ``ConfigureRouteAction``; ``core/rules/outbound/resourcerules.go`` section lookup);
- a MeshRetry turns one 503 into a 200 (``meshretry/plugin/xds/configurer.go`` ``genHttpRetryPolicy``);
- a MeshTCPRoute splits connections by weight (``meshtcproute/plugin/v1alpha1/listeners.go`` weighted tcp_proxy).
The Mesh skips Kuma's default policies so each effect comes from the policy under test only.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from meshxds.resources import load_catalog
from meshxds.snapshots.builder import snapshots_for
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.ads import ServerThread
from tests.support.apps import App, apps
from tests.support.envoy import Envoy
from tests.support.net import free_port, http_get
from tests.support.poll import wait_until
from tests.support.snapshots import static_bootstrap

pytestmark = pytest.mark.real

CLIENT_IP = "127.0.0.31"
BACKEND_IP = "127.0.0.32"
REQUESTS = 400

MESH = """
type: Mesh
name: default
meshServices: {{mode: Exclusive}}
skipCreatingInitialPolicies: ["*"]
---
type: Dataplane
name: backend-v1-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - {{port: {v1_http}, name: http, serviceAddress: 127.0.0.1, servicePort: {app_v1}, tags: {v1_tags}}}
    - {{port: {v1_api}, name: api, serviceAddress: 127.0.0.1, servicePort: {app_v1}, tags: {v1_tags}}}
    - {{port: {v1_other}, name: other, serviceAddress: 127.0.0.1, servicePort: {app_v1}, tags: {v1_tags}}}
---
type: Dataplane
name: backend-v2-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - {{port: {v2_http}, name: http, serviceAddress: 127.0.0.1, servicePort: {app_v2}, tags: {v2_tags}}}
---
type: Dataplane
name: raw-a-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - {{port: {raw_a}, name: tcp, serviceAddress: 127.0.0.1, servicePort: {app_raw_a},
       tags: {{kuma.io/service: raw-a}}}}
---
type: Dataplane
name: raw-b-1
mesh: default
networking:
  address: {backend_ip}
  inbound:
    - {{port: {raw_b}, name: tcp, serviceAddress: 127.0.0.1, servicePort: {app_raw_b},
       tags: {{kuma.io/service: raw-b}}}}
---
type: Dataplane
name: client-1
mesh: default
networking:
  address: {client_ip}
  inbound:
    - {{port: {client_in}, tags: {{kuma.io/service: client}}}}
  outbound:
    - {{address: {client_ip}, port: {out_split}, backendRef: {{kind: MeshService, name: backend-v1, port: {v1_http}}}}}
    - {{address: {client_ip}, port: {out_api}, backendRef: {{kind: MeshService, name: backend-v1, port: {v1_api}}}}}
    - {{address: {client_ip}, port: {out_other}, backendRef: {{kind: MeshService, name: backend-v1, port: {v1_other}}}}}
    - {{address: {client_ip}, port: {out_v2}, backendRef: {{kind: MeshService, name: backend-v2, port: {v2_http}}}}}
    - {{address: {client_ip}, port: {out_tcp}, backendRef: {{kind: MeshService, name: raw-a, port: {raw_a}}}}}
---
type: MeshHTTPRoute
name: canary
mesh: default
spec:
  targetRef: {{kind: Dataplane, name: client-1}}
  to:
    - targetRef: {{kind: MeshService, name: backend-v1, sectionName: http}}
      rules:
        - matches: [{{path: {{type: PathPrefix, value: /v2}}}}]
          default:
            backendRefs: [{{kind: MeshService, name: backend-v2, port: {v2_http}}}]
        - matches: [{{path: {{type: PathPrefix, value: /}}}}]
          default:
            filters:
              - type: RequestHeaderModifier
                requestHeaderModifier: {{add: [{{name: x-canary, value: via-route}}]}}
            backendRefs:
              - {{kind: MeshService, name: backend-v1, sectionName: http, weight: 90}}
              - {{kind: MeshService, name: backend-v2, port: {v2_http}, weight: 10}}
---
type: MeshTimeout
name: api-timeout
mesh: default
spec:
  targetRef: {{kind: Mesh}}
  to:
    - targetRef: {{kind: MeshService, name: backend-v1, sectionName: api}}
      default: {{http: {{requestTimeout: 1s}}}}
---
type: MeshRetry
name: v2-retry
mesh: default
spec:
  targetRef: {{kind: Mesh}}
  to:
    - targetRef: {{kind: MeshService, name: backend-v2}}
      default: {{http: {{numRetries: 2, retryOn: ["503"]}}}}
---
type: MeshTCPRoute
name: raw-split
mesh: default
spec:
  targetRef: {{kind: Mesh}}
  to:
    - targetRef: {{kind: MeshService, name: raw-a}}
      rules:
        - default:
            backendRefs:
              - {{kind: MeshService, name: raw-a, port: {raw_a}, weight: 80}}
              - {{kind: MeshService, name: raw-b, port: {raw_b}, weight: 20}}
"""

BACKEND_PORTS = ("v1_http", "v1_api", "v1_other", "v2_http", "raw_a", "raw_b")
CLIENT_PORTS = ("client_in", "out_split", "out_api", "out_other", "out_v2", "out_tcp")


def http_tags(service: str) -> str:
    return "{kuma.io/service: " + service + ", kuma.io/protocol: http}"


@dataclass(frozen=True)
class Mesh:
    ports: dict[str, int]
    apps: dict[str, App]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    folder = tmp_path_factory.mktemp("targeting")
    with apps("v1", "v2", "raw-a", "raw-b") as started:
        ports = {name: free_port(BACKEND_IP) for name in BACKEND_PORTS}
        ports |= {name: free_port(CLIENT_IP) for name in CLIENT_PORTS}
        app_ports = {f"app_{k.replace('-', '_')}": a.port for k, a in started.items()}
        tags = {"v1_tags": http_tags("backend-v1"), "v2_tags": http_tags("backend-v2")}
        text = MESH.format(backend_ip=BACKEND_IP, client_ip=CLIENT_IP, **ports, **app_ports, **tags)
        (folder / "mesh.yaml").write_text(text)
        result = load_catalog([folder])
        assert result.catalog is not None, result.errors
        assert result.warnings == ()
        snapshots = snapshots_for(result.catalog)
        # Backends run from static bootstraps; the client gets its routes over ADS (LDS/RDS/CDS/EDS) from our server.
        backends = [
            Envoy(static_bootstrap(snapshots[f"default.{node}"]), folder, node)
            for node in ("backend-v1-1", "backend-v2-1", "raw-a-1", "raw-b-1")
        ]
        with ServerThread() as server:
            server.set(*snapshots.values())
            client = Envoy(bootstrap_config("default.client-1", ads_port=server.port), folder, "client-1")
            envoys = [*backends, client]
            for envoy in envoys:
                envoy.start()
            try:
                for envoy in envoys:
                    envoy.wait_ready()
                wait_until(lambda: client.stat("listener_manager.total_listeners_active") >= 6, 10.0, 0.05, "LDS")
                assert (
                    client.stat("http.ads.rds.update_rejected") + client.stat("cluster_manager.cds.update_rejected")
                    == 0
                )
                yield Mesh(ports, started)
            finally:
                for envoy in envoys:
                    envoy.stop()


def get(mesh: Mesh, outbound: str, path: str, timeout: float = 5.0) -> tuple[int, dict[str, object]]:
    status, body = http_get(CLIENT_IP, mesh.ports[outbound], path, timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body}


def first_answer(mesh: Mesh, outbound: str, path: str) -> tuple[int, dict[str, object]]:
    """The first answer once the sidecars listen (a refused or reset connection means not yet)."""
    return wait_until(lambda: get(mesh, outbound, path), 10.0, 0.05, f"GET {path} via {outbound}")


def test_http_route_splits_90_10(mesh: Mesh) -> None:
    first_answer(mesh, "out_split", "/warm")
    names = Counter(str(get(mesh, "out_split", f"/split/{n}")[1].get("name")) for n in range(REQUESTS))
    assert set(names) == {"v1", "v2"}, names
    share = 100 * names["v2"] / REQUESTS
    print(f"HTTP split over {REQUESTS} requests: {dict(names)}")
    assert 5 <= share <= 15, f"v2 got {share:.1f} % of {REQUESTS} requests (expected 10 ± 5): {names}"


def test_path_prefix_v2_goes_to_v2_only(mesh: Mesh) -> None:
    first_answer(mesh, "out_split", "/warm")
    names = {
        str(get(mesh, "out_split", path)[1].get("name")) for path in ("/v2", "/v2/x", "/v2/y/z") for _ in range(20)
    }
    assert names == {"v2"}
    # PathPrefix is segment-wise: /v2x is not under /v2 and falls through to the split
    assert str(get(mesh, "out_split", "/v2x")[1].get("path")) == "/v2x"


def test_request_header_filter_reaches_the_app(mesh: Mesh) -> None:
    status, body = first_answer(mesh, "out_split", "/headers")
    assert status == 200
    headers = body["headers"]
    assert isinstance(headers, dict) and headers.get("x-canary") == "via-route"
    # the /v2 rule has no filter: no header there
    _, body = get(mesh, "out_split", "/v2/headers")
    assert isinstance(body["headers"], dict) and "x-canary" not in body["headers"]


def test_timeout_on_one_section_only(mesh: Mesh) -> None:
    first_answer(mesh, "out_api", "/warm")
    first_answer(mesh, "out_other", "/warm")
    start = time.monotonic()
    status, _ = get(mesh, "out_api", "/slow?ms=2500", timeout=10)
    took = time.monotonic() - start
    assert status == 504 and took < 2.0, (status, took)
    status, body = get(mesh, "out_other", "/slow?ms=2500", timeout=10)
    assert (status, body.get("name")) == (200, "v1")


def test_retry_turns_one_503_into_200(mesh: Mesh) -> None:
    first_answer(mesh, "out_v2", "/warm")
    status, body = get(mesh, "out_v2", "/flaky/retried")
    assert (status, body.get("name")) == (200, "v2")
    assert mesh.apps["v2"].hits.count("/flaky/retried") == 2
    # without a MeshRetry (backend-v1's other port) the single 503 reaches the client
    status, _ = get(mesh, "out_other", "/flaky/not-retried")
    assert status == 503


def test_tcp_route_splits_80_20(mesh: Mesh) -> None:
    first_answer(mesh, "out_tcp", "/warm")
    names = Counter(str(get(mesh, "out_tcp", f"/tcp/{n}")[1].get("name")) for n in range(REQUESTS))
    assert set(names) == {"raw-a", "raw-b"}, names
    share = 100 * names["raw-b"] / REQUESTS
    print(f"TCP split over {REQUESTS} connections: {dict(names)}")
    assert 15 <= share <= 25, f"raw-b got {share:.1f} % of {REQUESTS} connections (expected 20 ± 5): {names}"
