"""Pure mTLS and RBAC rendering, and the Mesh mTLS / MeshTrafficPermission models, against Kuma 2.14.3."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from meshxds.resources.catalog import Catalog
from meshxds.resources.model import Action, Mesh, MeshTrafficPermission
from meshxds.resources.mtls import check_mtls, parse_mesh_duration
from meshxds.resources.mtp import check_mtp, inbound_rules
from meshxds.translators.proxy import translate
from meshxds.translators.rbac import http_rbac, network_rbac
from meshxds.translators.tls import (
    ca_secret,
    downstream_tls,
    identity_secret,
    sni_for_resource,
    sni_from_tags,
    upstream_tls,
)
from tests.support.reference import KUMA_GOLDEN

GOLDEN_06 = KUMA_GOLDEN / "06-e2e-universal-exclusive-full-xds"


def as_dict(msg: Any) -> dict[str, Any]:
    return dict(msg.to_dict())


def golden_06(kind: str) -> dict[str, Any]:
    path = GOLDEN_06 / "no-policies.test-server.golden.json"
    xds = json.loads(path.read_text())["xds"]
    return dict(xds[f"type.googleapis.com/{kind}"])


@pytest.mark.kuma_reference
def test_inbound_tls_matches_kuma_golden_06() -> None:
    """Kuma e2e golden 06 (inbound:…:80 of test-server): DownstreamTlsContext via SDS, SAN prefix, client cert."""
    listener = golden_06("envoy.config.listener.v3.Listener")["inbound:IP_REDACTED:80"]
    expected = listener["filterChains"][0]["transportSocket"]
    assert as_dict(downstream_tls("envoyconfig")) == expected


@pytest.mark.kuma_reference
def test_outbound_tls_matches_kuma_golden_06() -> None:
    """Golden 06 cluster envoyconfig_demo-client__kuma-3_msvc_3000: ALPN kuma, exact SAN, Kuma's SNI."""
    cluster = golden_06("envoy.config.cluster.v3.Cluster")["envoyconfig_demo-client__kuma-3_msvc_3000"]
    sni = sni_for_resource("demo-client", "envoyconfig", "MeshService", 3000)
    assert sni == "a65abe81bca1750d1.demo-client.3000.envoyconfig.ms"  # pkg/xds/envoy/tls/sni.go SNIForResource
    socket = upstream_tls("envoyconfig", sni, ("spiffe://envoyconfig/demo-client",))
    assert as_dict(socket) == cluster["transportSocket"]


@pytest.mark.kuma_reference
def test_secrets_match_kuma_golden_06() -> None:
    """Golden 06 secrets (Kuma replaces the PEMs by CERT/KEY/CA)."""
    secrets = golden_06("envoy.extensions.transport_sockets.tls.v3.Secret")
    assert as_dict(identity_secret("envoyconfig", b"CERT", b"KEY")) == secrets["identity_cert:secret:envoyconfig"]
    ca = as_dict(ca_secret("envoyconfig", (b"CA",)))
    assert ca["validationContext"]["trustedCa"]["inlineBytes"] == "Q0EK"  # "CA\n": Kuma joins PEMs with "\n"
    assert ca["name"] == "mesh_ca:secret:envoyconfig"


def test_sni_from_tags() -> None:
    """pkg/xds/envoy/tls/sni.go SNIFromTags."""
    assert sni_from_tags({"kuma.io/service": "backend"}) == "backend"
    assert sni_from_tags({"kuma.io/service": "backend", "version": "v1", "a": "b"}) == "backend{a=b,version=v1}"


def mtp(spec: dict[str, Any], name: str = "p") -> MeshTrafficPermission:
    return MeshTrafficPermission.model_validate({"name": name, "spec": spec})


def allow_all() -> MeshTrafficPermission:
    return mtp(
        {"targetRef": {"kind": "Mesh"}, "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}
    )


@pytest.mark.kuma_reference
def test_allow_all_http_rbac_matches_golden_06() -> None:
    """Golden 06 inbound HCM: the allow-all MeshTrafficPermission is ALLOW any principal."""
    listener = golden_06("envoy.config.listener.v3.Listener")["inbound:IP_REDACTED:80"]
    hcm = listener["filterChains"][0]["filters"][0]["typedConfig"]
    rules = tuple(inbound_rules([allow_all()]))
    assert as_dict(http_rbac("envoyconfig", rules)) == hcm["httpFilters"][0]


def test_no_permission_denies_everything() -> None:
    """meshtrafficpermission/plugin/v1alpha1/plugin.go denyRules: ALLOW with no policy renders ``rules: {}``."""
    flt = network_rbac("m", (), "inbound_127_0_0_1_8080")
    config = as_dict(flt)["typedConfig"]
    assert config == {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
        "rules": {},
        "statPrefix": "inbound_127_0_0_1_8080.",
    }


def test_deny_one_service_allow_the_rest() -> None:
    """legacy_rbac_configurer.go principalFromSubset: a more specific Deny becomes notId in the Allow principal."""
    policy = mtp(
        {
            "targetRef": {"kind": "Mesh"},
            "from": [
                {"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}},
                {"targetRef": {"kind": "MeshService", "name": "bad"}, "default": {"action": "Deny"}},
            ],
        }
    )
    rules = inbound_rules([policy])
    assert [(r.action, [(t.key, t.value, t.negated) for t in r.subset]) for r in rules] == [
        (Action.DENY, [("kuma.io/service", "bad", False)]),
        (Action.ALLOW, [("kuma.io/service", "bad", True)]),
    ]
    config = as_dict(http_rbac("m", tuple(rules)))["typedConfig"]
    principals = config["rules"]["policies"]["MeshTrafficPermission"]["principals"]
    assert principals == [{"notId": {"authenticated": {"principalName": {"exact": "spiffe://m/bad"}}}}]


def test_shadow_deny_and_tags() -> None:
    policy = mtp(
        {
            "from": [
                {
                    "targetRef": {"kind": "MeshSubset", "tags": {"version": "v1", "team": "a"}},
                    "default": {"action": "AllowWithShadowDeny"},
                }
            ]
        }
    )
    config = as_dict(http_rbac("m", tuple(inbound_rules([policy]))))["typedConfig"]
    and_ids = {"andIds": {"ids": [
        {"authenticated": {"principalName": {"exact": "kuma://team/a"}}},
        {"authenticated": {"principalName": {"exact": "kuma://version/v1"}}},
    ]}}  # fmt: skip
    assert config["rules"]["policies"]["MeshTrafficPermission"]["principals"] == [and_ids]
    assert config["shadowRules"] == {
        "action": "DENY",
        "policies": {"MeshTrafficPermission": {"permissions": [{"any": True}], "principals": [and_ids]}},
    }


def test_mtp_validation() -> None:
    bad = mtp({"targetRef": {"kind": "Foo"}, "from": [{"targetRef": {"kind": "MeshService"}, "default": {}}]})
    assert [f for f, _ in check_mtp(bad)] == [
        "spec.targetRef.kind",
        "spec.from[0].targetRef.name",
        "spec.from[0].default.action",
    ]
    assert check_mtp(allow_all()) == []


def test_mesh_mtls_validation_uses_kumas_messages() -> None:
    """pkg/core/resources/apis/mesh/mesh_validator.go validateMtls."""
    mesh = Mesh.model_validate(
        {
            "name": "m",
            "spec": {
                "mtls": {
                    "enabledBackend": "nope",
                    "backends": [
                        {"name": "a", "type": "builtin", "dpCert": {"rotation": {"expiration": "1 day"}}},
                        {"name": "a", "type": "vault"},
                    ],
                }
            },
        }
    )
    assert mesh.spec.mtls is not None
    problems = dict(check_mtls(mesh.spec.mtls, "m"))
    assert problems == {
        "spec.mtls.backends": "cannot have more than 1 backends",
        "spec.mtls.backends[1].name": "'a' name is already used for another backend",
        "spec.mtls.backends[0].dpCert.rotation.expiration": "has to be a valid format",
        "spec.mtls.backends[1].type": "must be one of builtin, provided (is 'vault')",
        "spec.mtls.enabledBackend": "has to be set to one of the backends in the mesh",
    }
    assert parse_mesh_duration("1d").total_seconds() == 86400
    assert parse_mesh_duration("0").total_seconds() == 0


def test_mesh_passthrough_and_mode_defaults() -> None:
    assert Mesh(name="m").spec.passthrough
    assert not Mesh.model_validate(
        {"name": "m", "spec": {"networking": {"outbound": {"passthrough": False}}}}
    ).spec.passthrough
    assert Mesh(name="m").spec.mtls_mode == "STRICT"


PASSTHROUGH = """
type: Mesh
name: default
networking:
  outbound:
    passthrough: {passthrough}
---
type: Dataplane
name: web-1
mesh: default
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags: {{kuma.io/service: web}}
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15099
    ipFamilyMode: {family}
"""


@pytest.mark.parametrize("passthrough", [True, False])
def test_passthrough_switch_removes_only_the_cluster(catalog_from: Callable[..., Catalog], passthrough: bool) -> None:
    """transparent_proxy_generator.go: ``IsPassthrough()`` decides the ORIGINAL_DST cluster; the listener stays."""
    catalog = catalog_from(PASSTHROUGH.format(passthrough=str(passthrough).lower(), family="DualStack"))
    res = translate(catalog)["default.web-1"]
    listeners = {lis.name: lis for lis in res.listeners}
    assert listeners["outbound:passthrough:ipv4"].address.socket_address.port_value == 15099
    assert listeners["outbound:passthrough:ipv4"].use_original_dst
    assert "outbound:passthrough:ipv6" in listeners
    clusters = {c.name for c in res.clusters}
    expected = {"outbound:passthrough:ipv4", "outbound:passthrough:ipv6"} if passthrough else set()
    assert clusters & {"outbound:passthrough:ipv4", "outbound:passthrough:ipv6"} == expected


def test_passthrough_ipv4_only(catalog_from: Callable[..., Catalog]) -> None:
    catalog = catalog_from(PASSTHROUGH.format(passthrough="true", family="IPv4"))
    res = translate(catalog)["default.web-1"]
    assert [lis.name for lis in res.listeners if "passthrough" in lis.name] == ["outbound:passthrough:ipv4"]
