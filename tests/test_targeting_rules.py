"""Targeting rules the golden cases don't isolate: validation messages (file, document, resource, field),
references that resolve to nothing (warnings, the mesh still served), Kuma's merge order, route ordering,
default policies on and off, and ``meshxds rules``.

Kuma v2.14.3 sources pinned here: ``meshhttproute/api/v1alpha1/validation.go`` and ``compare.go``,
``core/rules/resolve/backendref.go`` and ``targetref.go``, ``core/rules/outbound/{resourcerules,sort}.go``
(testdata ``resourcerules/mt_with_ms-sectionname``), ``core/rules/merge/merge.go`` (``mergeByKey``),
``pkg/defaults/mesh/*.go``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshxds.resources import LoadResult, load_catalog
from meshxds.resources import policies as p
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.dump import to_json_dict
from meshxds.translators.routes import compare_match
from meshxds.translators.rules import ProxyRules, policies_for

MESH = """
type: Mesh
name: default
meshServices: {{mode: {mode}}}
{skip}
---
type: Dataplane
name: client-1
mesh: default
labels: {{team: web}}
networking:
  address: 10.0.0.1
  inbound: [{{port: 3000, tags: {{kuma.io/service: client, kuma.io/protocol: http}}}}]
  transparentProxying: {{redirectPortInbound: 15006, redirectPortOutbound: 15001}}
---
type: Dataplane
name: api-1
mesh: default
labels: {{app: api}}
networking:
  address: 10.0.0.2
  inbound:
    - {{port: 8080, name: http, tags: {{kuma.io/service: api, kuma.io/protocol: http}}}}
    - {{port: 9090, name: admin, tags: {{kuma.io/service: api, kuma.io/protocol: http}}}}
---
type: Dataplane
name: api-v2-1
mesh: default
labels: {{app: api}}
networking:
  address: 10.0.0.3
  inbound: [{{port: 8080, name: http, tags: {{kuma.io/service: api-v2, kuma.io/protocol: http}}}}]
"""


def load(
    tmp_path: Path, extra: str, mode: str = "Exclusive", skip: str = 'skipCreatingInitialPolicies: ["*"]'
) -> LoadResult:
    (tmp_path / "mesh.yaml").write_text(MESH.format(mode=mode, skip=skip) + "---\n" + extra)
    return load_catalog([tmp_path])


def messages(result: LoadResult, errors: bool = True) -> list[str]:
    found = result.errors if errors else result.warnings
    return [str(x).split(": ", 1)[1] for x in found]  # without the (temporary) file name


# --------------------------------------------------------------------------- validation

INVALID = [
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n    rules: []\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].targetRef.kind: must be one of MeshService, "
        "MeshExternalService, MeshMultiZoneService",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: Exact, value: /a}}]\n      default:\n"
        "        backendRefs: [{kind: MeshService, name: api, labels: {a: b}}]\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].rules[0].default.backendRefs[0]: "
        "either labels or name and namespace must be specified",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: Exact, value: /a}}]\n      default:\n"
        "        backendRefs: [{kind: MeshMultiZoneService, name: all}]\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].rules[0].default.backendRefs[0].port: "
        "is required with kind MeshMultiZoneService",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: Exact, value: /a}}]\n      default:\n"
        "        filters: [{type: URLRewrite,\n"
        "                   urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n",
        "document 5: MeshHTTPRoute default/r: "
        "spec.to[0].rules[0].default.filters[0].urlRewrite.path.replacePrefixMatch: "
        "can only appear if all matches match a path prefix",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: PathPrefix, value: /a}}]\n      default:\n"
        "        filters: [{type: RequestHeaderModifier}]\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].rules[0].default.filters[0].requestHeaderModifier: "
        "must be set when type is RequestHeaderModifier",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: Exact, value: a}}]\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].rules[0].matches[0].path.value: "
        "must be an absolute path (start with /)",
    ),
    (
        "type: MeshHTTPRoute\nname: r\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules:\n    - matches: [{path: {type: PathPrefix, value: /a}}]\n      default:\n"
        "        filters: [{type: URLRewrite, urlRewrite: {hostToBackendHostname: true}}]\n",
        "document 5: MeshHTTPRoute default/r: spec.to[0].rules[0].default.filters[0].urlRewrite.hostToBackendHostname: "
        "can only be set with MeshGateway",
    ),
    (
        "type: MeshTimeout\nname: t\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n"
        "    default: {http: {requestTimeout: soon}}\n",
        "document 5: MeshTimeout default/t: spec.to[0].default.http.requestTimeout: "
        "must be a duration such as 5s, 1m30s or 500ms (is 'soon')",
    ),
    (
        "type: MeshRetry\nname: t\nmesh: default\nspec:\n  targetRef: {kind: Mesh, name: x}\n  to: []\n",
        "document 5: MeshRetry default/t: spec.targetRef.name: must not be set with kind Mesh",
    ),
    (
        "type: MeshCircuitBreaker\nname: t\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n"
        "    default: {connectionLimits: {maxConections: 3}}\n",
        "document 5: MeshCircuitBreaker default/t: spec.to[0].default.connectionLimits.maxConections: unknown field",
    ),
    (
        "type: MeshTCPRoute\nname: t\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: MeshService, name: api}\n"
        "    rules: [{default: {backendRefs: [{kind: MeshGateway, name: gw}]}}]\n",
        "document 5: MeshTCPRoute default/t: spec.to[0].rules[0].default.backendRefs[0].kind: "
        "must be one of MeshService, MeshServiceSubset, MeshExternalService, MeshMultiZoneService",
    ),
    (
        "type: MeshLoadBalancingStrategy\nname: t\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n"
        "    default: {loadBalancer: {type: Fastest}}\n",
        "document 5: MeshLoadBalancingStrategy default/t: spec.to[0].default.loadBalancer.type: "
        "must be one of 'RoundRobin', 'LeastRequest', 'RingHash', 'Random' or 'Maglev'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_policy_is_one_error_naming_document_resource_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    result = load(tmp_path, text)
    assert result.catalog is None
    assert messages(result) == [expected]


def test_kubernetes_form_is_namespaced_and_named_like_kuma(tmp_path: Path) -> None:
    """On Kubernetes a policy's core name is ``<name>.<namespace>``; its KRI uses display name and namespace."""
    text = (
        "apiVersion: kuma.io/v1alpha1\nkind: MeshTimeout\nmetadata:\n  name: slow\n  namespace: kuma-demo\n"
        "  labels: {kuma.io/mesh: default}\nspec:\n"
        "  to: [{targetRef: {kind: Mesh}, default: {connectionTimeout: 2s}}]\n"
    )
    result = load(tmp_path, text)
    assert result.catalog is not None, result.errors
    [policy] = [x for x in result.catalog.meshes["default"].policies if x.kind == "MeshTimeout"]
    assert policy.name == "slow.kuma-demo"
    assert policy.kri == "kri_mt_default_default_kuma-demo_slow_"


# --------------------------------------------------------------------------- references


def test_unresolved_references_are_warnings_and_the_mesh_is_still_served(tmp_path: Path) -> None:
    text = """
type: MeshHTTPRoute
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: MeshService, name: api, sectionName: nope}
      rules: []
    - targetRef: {kind: MeshService, name: api}
      rules:
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            backendRefs:
              - {kind: MeshService, name: ghost, port: 80}
              - {kind: MeshService, name: api, port: 1234}
              - {kind: MeshService, labels: {app: api}, port: 8080}
              - {kind: MeshService, name: api}
"""
    result = load(tmp_path, text)
    assert result.catalog is not None
    assert messages(result, errors=False) == [
        "document 5: MeshHTTPRoute default/r: spec.to[0].targetRef: "
        "no selected MeshService has a port named 'nope': the entry applies to nothing",
        "document 5: MeshHTTPRoute default/r: spec.to[1].rules[0].default.backendRefs[0]: "
        "MeshService 'ghost' does not exist: the backend is dropped",
        "document 5: MeshHTTPRoute default/r: spec.to[1].rules[0].default.backendRefs[1]: "
        "MeshService 'api' has no port '1234': the backend is dropped",
        "document 5: MeshHTTPRoute default/r: spec.to[1].rules[0].default.backendRefs[2]: "
        "MeshService with labels {'app': 'api'} does not exist: the backend is dropped",
        "document 5: MeshHTTPRoute default/r: spec.to[1].rules[0].default.backendRefs[3]: refers to "
        "kuma.io/service 'api' (no port or sectionName), which an Exclusive mesh does not serve: "
        "refer to the MeshService with its port (migration step 3)",
    ]
    assert snapshots_for(result.catalog)["default.client-1"].versions


def test_labels_matching_two_services_pick_the_oldest_with_a_warning(tmp_path: Path) -> None:
    """``ResolveResourceIdentifier``: several matches → the oldest (here: first loaded) one."""
    text = """
type: MeshService
name: api-canary
mesh: default
labels: {tier: api}
spec:
  selector: {dataplaneTags: {kuma.io/service: api-v2}}
  ports: [{name: http, port: 8080, targetPort: 8080, appProtocol: http}]
---
type: MeshService
name: api-stable
mesh: default
labels: {tier: api}
spec:
  selector: {dataplaneTags: {kuma.io/service: api}}
  ports: [{name: http, port: 8080, targetPort: 8080, appProtocol: http}]
---
type: MeshHTTPRoute
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: MeshService, name: api}
      rules:
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            backendRefs: [{kind: MeshService, labels: {tier: api}, port: 8080}]
"""
    result = load(tmp_path, text)
    assert result.catalog is not None
    assert messages(result, errors=False) == [
        "document 7: MeshHTTPRoute default/r: spec.to[0].rules[0].default.backendRefs[0]: MeshService with labels "
        "{'tier': 'api'} matches 2 resources (api-canary, api-stable): the oldest, api-canary, is used"
    ]
    dump = to_json_dict(snapshots_for(result.catalog)["default.client-1"])
    [route] = [r for r in dump["routes"] if r["name"].endswith("__api_http")]
    assert route["virtualHosts"][0]["routes"][0]["route"]["cluster"] == "default_api-canary__default_msvc_8080"


# --------------------------------------------------------------------------- merge order


def rules_for(result: LoadResult, node: str = "default.client-1") -> ProxyRules:
    assert result.catalog is not None, result.errors
    view = result.catalog.meshes["default"]
    dp = next(d for d in view.dataplanes if d.node_id == node)
    return ProxyRules(view, policies_for(view, dp))


TIMEOUTS = """
type: MeshTimeout
name: mt-1
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, name: api, sectionName: admin}
      default: {connectionTimeout: 11s, http: {requestTimeout: 12s}}
    - targetRef: {kind: MeshService, name: api}
      default: {idleTimeout: 9s, connectionTimeout: 111s}
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 1s, http: {streamIdleTimeout: 1m}}
"""


def test_section_beats_service_beats_mesh(tmp_path: Path) -> None:
    """``resourcerules/mt_with_ms-sectionname``: the section key merges the service entry under it."""
    rules = rules_for(load(tmp_path, TIMEOUTS))
    admin = rules.compute("MeshTimeout", "kri_msvc_default_default__api_admin", "kri_msvc_default_default__api_")
    http = rules.compute("MeshTimeout", "kri_msvc_default_default__api_http", "kri_msvc_default_default__api_")
    other = rules.compute("MeshTimeout", "kri_msvc_default_default__client_3000", "kri_msvc_default_default__client_")
    assert admin is not None and http is not None and other is not None
    assert dict(admin.conf) == {
        "connectionTimeout": "11s",
        "idleTimeout": "9s",
        "http": {"streamIdleTimeout": "1m", "requestTimeout": "12s"},
    }
    assert dict(http.conf) == {"connectionTimeout": "111s", "idleTimeout": "9s", "http": {"streamIdleTimeout": "1m"}}
    assert dict(other.conf) == {"connectionTimeout": "1s", "http": {"streamIdleTimeout": "1m"}}


def test_equal_specificity_the_alphabetically_first_name_wins(tmp_path: Path) -> None:
    """``CompareByDisplayName`` is reversed: "a" merges after "b" and overrides it."""
    text = """
type: MeshRetry
name: b-retry
mesh: default
spec:
  to: [{targetRef: {kind: Mesh}, default: {http: {numRetries: 2, perTryTimeout: 2s}}}]
---
type: MeshRetry
name: a-retry
mesh: default
spec:
  to: [{targetRef: {kind: Mesh}, default: {http: {numRetries: 7}}}]
"""
    merged = rules_for(load(tmp_path, text)).compute("MeshRetry", "kri_x", "kri_y")
    assert merged is not None
    assert dict(merged.conf) == {"http": {"numRetries": 7, "perTryTimeout": "2s"}}
    assert dict(merged.origins) == {
        "http.numRetries": "MeshRetry default/a-retry",
        "http.perTryTimeout": "MeshRetry default/b-retry",
    }


def test_top_level_targetref_chooses_proxies_and_a_dataplane_target_is_more_specific(tmp_path: Path) -> None:
    text = """
type: MeshTimeout
name: a-mesh
mesh: default
spec:
  targetRef: {kind: Mesh}
  to: [{targetRef: {kind: Mesh}, default: {connectionTimeout: 1s}}]
---
type: MeshTimeout
name: z-web
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {team: web}}
  to: [{targetRef: {kind: Mesh}, default: {connectionTimeout: 2s}}]
"""
    result = load(tmp_path, text)
    client = rules_for(result).compute("MeshTimeout", "k", "k")
    api = rules_for(result, "default.api-1").compute("MeshTimeout", "k", "k")
    assert client is not None and api is not None
    assert client.conf["connectionTimeout"] == "2s"  # Dataplane (order 2) merges after Mesh (order 1)
    assert api.conf["connectionTimeout"] == "1s"  # z-web does not select api-1


def test_route_rules_with_equal_matches_merge_into_the_winner(tmp_path: Path) -> None:
    """``mergeValuesByKey``: equal matches merge (later wins) and take the later position."""
    text = """
type: MeshHTTPRoute
name: b-route
mesh: default
spec:
  to:
    - targetRef: {kind: MeshService, name: api}
      rules:
        - matches: [{path: {type: PathPrefix, value: /x}}]
          default:
            filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-b, value: "1"}]}}]
            backendRefs: [{kind: MeshService, name: api, port: 8080}]
        - matches: [{path: {type: PathPrefix, value: /y}}]
          default: {backendRefs: [{kind: MeshService, name: api, port: 8080}]}
---
type: MeshHTTPRoute
name: a-route
mesh: default
spec:
  to:
    - targetRef: {kind: MeshService, name: api, sectionName: http}
      rules:
        - matches: [{path: {type: PathPrefix, value: /x}}]
          default: {backendRefs: [{kind: MeshService, name: api-v2, port: 8080}]}
"""
    rules = rules_for(load(tmp_path, text)).http_rules(
        "kri_msvc_default_default__api_http", "kri_msvc_default_default__api_"
    )
    assert [(r.matches[0].path.value if r.matches[0].path else "", r.origin.name) for r in rules] == [
        ("/x", "a-route"),
        ("/y", "b-route"),
    ]
    x = rules[0].default
    assert x.filters is not None and x.filters[0].type == "RequestHeaderModifier"  # kept from b-route
    assert x.backend_refs is not None and x.backend_refs[0].name == "api-v2"  # replaced by a-route


def test_match_order_is_kumas_compare_match() -> None:
    """``CompareMatch``: Exact, then longer prefixes, then regexes; method and more headers first on ties."""

    def m(**kw: Any) -> p.Match:
        return p.Match.model_validate(kw)

    matches = [
        m(path={"type": "RegularExpression", "value": "^/a.*$"}),
        m(path={"type": "PathPrefix", "value": "/a"}),
        m(path={"type": "PathPrefix", "value": "/abc"}, headers=[{"name": "x", "value": "1"}]),
        m(path={"type": "PathPrefix", "value": "/abc"}, method="GET"),
        m(path={"type": "Exact", "value": "/z"}),
        m(headers=[{"name": "x", "value": "1"}]),
    ]
    ordered = sorted(matches, key=compare_match)
    assert ordered == [matches[4], matches[3], matches[2], matches[1], matches[0], matches[5]]


# --------------------------------------------------------------------------- defaults and CLI


def kinds(result: LoadResult) -> list[tuple[str, str]]:
    assert result.catalog is not None, result.errors
    return [(x.kind, x.name) for x in result.catalog.meshes["default"].policies]


def test_default_policies_unless_skipped(tmp_path: Path) -> None:
    """``pkg/defaults/mesh``: four policies named ``<prefix>-<mesh>``; skipped by type name or ``*``."""
    assert kinds(load(tmp_path, "", skip="")) == [
        ("MeshTimeout", "mesh-gateways-timeout-all-default"),
        ("MeshTimeout", "mesh-timeout-all-default"),
        ("MeshCircuitBreaker", "mesh-circuit-breaker-all-default"),
        ("MeshRetry", "mesh-retry-all-default"),
    ]
    assert kinds(load(tmp_path, "", skip="skipCreatingInitialPolicies: [MeshRetry, MeshTimeout]")) == [
        ("MeshCircuitBreaker", "mesh-circuit-breaker-all-default")
    ]
    assert kinds(load(tmp_path, "")) == []


@pytest.mark.real
def test_rules_command_names_the_origin_of_each_value(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text(MESH.format(mode="Exclusive", skip="") + "---\n" + TIMEOUTS)
    run = subprocess.run(
        [sys.executable, "-m", "meshxds.cli.main", "rules", str(tmp_path), "--node", "default.client-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    view = yaml.safe_load(run.stdout)
    admin = next(o for o in view["outbounds"] if o["kri"] == "kri_msvc_default_default__api_admin")
    assert admin["MeshTimeout"]["conf"]["connectionTimeout"] == "11s"
    assert admin["MeshTimeout"]["origins"] == {
        "connectionTimeout": "MeshTimeout default/mt-1",
        "http.requestTimeout": "MeshTimeout default/mt-1",
        # mt-1's Mesh entry ties with Kuma's default one, whose name sorts first: the default wins
        "http.streamIdleTimeout": "MeshTimeout default/mesh-timeout-all-default",
        "idleTimeout": "MeshTimeout default/mt-1",
    }
    assert admin["MeshRetry"]["origins"]["http.numRetries"] == "MeshRetry default/mesh-retry-all-default"
    unknown = subprocess.run(
        [sys.executable, "-m", "meshxds.cli.main", "rules", str(tmp_path), "--node", "default.nobody"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1 and "unknown node 'default.nobody'" in unknown.stderr


def test_snapshot_checks_see_weighted_and_mirror_clusters() -> None:
    """The snapshot builder's reference scan must know every cluster a route or tcp_proxy may send to."""
    from meshxds.codec.encode import encode_message
    from meshxds.snapshots.wire import TCP_PROXY_URL, filter_references, route_config_clusters
    from meshxds.translators import protos as pb
    from meshxds.translators import route_protos as rp

    weights = rp.WeightedCluster(clusters=[rp.WeightedClusterClusterWeight(name=n, weight=1) for n in ("a", "b")])
    mirror = rp.RouteActionRequestMirrorPolicy(cluster="m")
    action = pb.RouteAction(weighted_clusters=weights, request_mirror_policies=[mirror])
    route = pb.Route(match=pb.RouteMatch(prefix="/"), route=action)
    single = pb.Route(match=pb.RouteMatch(prefix="/x"), route=pb.RouteAction(cluster="c"))
    config = pb.RouteConfiguration(
        name="r", virtual_hosts=[pb.VirtualHost(name="v", domains=["*"], routes=[single, route])]
    )
    assert route_config_clusters(encode_message(config)) == ["c", "a", "b", "m"]
    tcp_weights = rp.TcpProxyWeightedCluster(
        clusters=[rp.TcpProxyWeightedClusterClusterWeight(name=n, weight=1) for n in ("t1", "t2")]
    )
    tcp = pb.TcpProxy(stat_prefix="s", weighted_clusters=tcp_weights)
    assert filter_references(TCP_PROXY_URL, encode_message(tcp)) == (["t1", "t2"], [])


def test_reload_rebuilds_a_route_whose_backend_appears(tmp_path: Path) -> None:
    """The incremental builder must not keep a route or cluster whose backend resolution changed."""
    from meshxds.snapshots.builder import Builder

    route = """
type: MeshHTTPRoute
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: MeshService, name: api, sectionName: http}
      rules:
        - matches: [{path: {type: PathPrefix, value: /}}]
          default: {backendRefs: [{kind: MeshService, labels: {tier: canary}, port: 8080}]}
---
type: MeshTimeout
name: t
mesh: default
spec:
  to: [{targetRef: {kind: MeshService, labels: {tier: canary}}, default: {connectionTimeout: 2s}}]
"""
    canary = """
---
type: MeshService
name: canary
mesh: default
labels: {tier: canary}
spec:
  selector: {dataplaneTags: {kuma.io/service: api-v2}}
  ports: [{name: http, port: 8080, targetPort: 8080, appProtocol: http}]
"""
    builder = Builder()
    before = load(tmp_path, route)
    assert before.catalog is not None
    builder.build(before.catalog)
    after = load(tmp_path, route + canary, skip='skipCreatingInitialPolicies: ["*"]')
    assert after.catalog is not None
    rebuilt = to_json_dict(builder.build(after.catalog)["default.client-1"])
    fresh = to_json_dict(snapshots_for(after.catalog)["default.client-1"])
    assert rebuilt == fresh
    [config] = [r for r in rebuilt["routes"] if r["name"].endswith("__api_http")]
    assert config["virtualHosts"][0]["routes"][0]["route"]["cluster"] == "default_canary__default_msvc_8080"
    [cluster] = [c for c in rebuilt["clusters"] if c["name"] == "default_canary__default_msvc_8080"]
    assert cluster["connectTimeout"] == "2s"
