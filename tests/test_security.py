"""security/: CAs, identities, tokens and the state directory, checked against Kuma 2.14.3's behaviour."""

from __future__ import annotations

import datetime
import os
import re
import stat
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.model import Dataplane, Mesh
from meshxds.security.ca import new_root_ca
from meshxds.security.cptls import control_plane_tls
from meshxds.security.identity import identity_uris, issue_identity, tag_set
from meshxds.security.issuer import IdentityIssuer
from meshxds.security.keys import KeySpec
from meshxds.security.state import StateDir
from meshxds.security.tokens import (
    MISSING_TOKEN,
    PermissionDenied,
    Unauthenticated,
    authorize,
    issue_token,
    verify_token,
)

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)


def dataplane(name: str = "web-1", mesh: str = "default", **tags: str) -> Dataplane:
    inbound_tags = {"kuma.io/service": "web", **tags}
    return Dataplane.model_validate(
        {
            "name": name,
            "mesh": mesh,
            "spec": {"networking": {"address": "127.0.0.1", "inbound": [{"port": 8080, "tags": inbound_tags}]}},
        }
    )


def mtls_mesh(name: str = "default", expiration: str | None = None) -> Mesh:
    backend: dict[str, object] = {"name": "ca-1", "type": "builtin"}
    if expiration:
        backend["dpCert"] = {"rotation": {"expiration": expiration}}
    return Mesh.model_validate({"name": name, "spec": {"mtls": {"enabledBackend": "ca-1", "backends": [backend]}}})


def sans(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )


# --------------------------------------------------------------------------- CA and identities


def test_builtin_root_is_shaped_like_kumas() -> None:
    """pkg/plugins/ca/builtin/ca.go newCACert: O=Kuma, OU=Mesh, CN=<mesh>, URI spiffe://<mesh>, CA, 10y, -10s."""
    ca = new_root_ca("demo", now=NOW)
    cert = ca.cert
    subject = cert.subject.rfc4514_string()
    assert subject == "CN=demo,OU=Mesh,O=Kuma"
    assert sans(ca.cert_pem) == ["spiffe://demo"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(seconds=10)
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=3650)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)


def test_identity_sans_follow_kumas_order() -> None:
    """pkg/plugins/ca/builtin/manager_test.go: spiffe per service, then kuma://<tag>/<value> for every tag."""
    dp = Dataplane.model_validate(
        {
            "name": "dp",
            "spec": {
                "networking": {
                    "address": "10.0.0.1",
                    "inbound": [
                        {"port": 1, "tags": {"kuma.io/service": "web", "version": "v1"}},
                        {"port": 2, "tags": {"kuma.io/service": "web-api", "version": "v1"}},
                    ],
                }
            },
        }
    )
    assert identity_uris("default", tag_set(dp)) == [
        "spiffe://default/web",
        "spiffe://default/web-api",
        "kuma://kuma.io/service/web",
        "kuma://kuma.io/service/web-api",
        "kuma://version/v1",
    ]


def test_identity_certificate_is_a_workload_leaf() -> None:
    """pkg/core/ca/issuer/issuer.go newWorkloadTemplate: not a CA, server+client auth, 24h, rotate at 4/5."""
    ca = new_root_ca("default")
    identity = issue_identity(ca, "default", ["spiffe://default/web"], now=NOW)
    cert = x509.load_pem_x509_certificate(identity.cert_pem)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {o.dotted_string for o in eku} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
    assert identity.not_after - identity.generation == datetime.timedelta(hours=24)
    assert identity.rotate_at == NOW + datetime.timedelta(hours=24) * 4 / 5
    assert not identity.expiring_soon(NOW + datetime.timedelta(hours=19))
    assert identity.expiring_soon(NOW + datetime.timedelta(hours=19, minutes=13))


def test_rsa_on_request() -> None:
    ca = new_root_ca("default", KeySpec.parse("rsa"))
    assert isinstance(ca.key, rsa.RSAPrivateKey) and ca.key.key_size == 2048
    with pytest.raises(ValueError, match="at least 2048"):
        KeySpec.parse("rsa:1024")


# --------------------------------------------------------------------------- state directory and issuer


def catalog(*dps: Dataplane, mesh: Mesh | None = None) -> Catalog:
    mesh = mesh or mtls_mesh()
    return Catalog(meshes={mesh.name: MeshView(mesh, dataplanes=dps)})


def test_ca_and_identities_survive_a_restart(tmp_path: Path) -> None:
    """EXCEED (kuma-security.md §7.7): the CA is created once and identities are reused after a restart."""
    cat = catalog(dataplane("web-1"), dataplane("web-2"))
    first = IdentityIssuer(StateDir(tmp_path))
    creds = first.credentials(cat)
    assert first.issued == 2
    cert_path, key_path = StateDir(tmp_path).ca_paths("default", "ca-1")
    assert cert_path.name == "default.ca-builtin-cert-ca-1.pem"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    again = IdentityIssuer(StateDir(tmp_path))
    creds2 = again.credentials(cat)
    assert again.issued == 0
    assert creds2.meshes["default"].ca_fingerprint == creds.meshes["default"].ca_fingerprint
    assert creds2.identities["default.web-1"].serial == creds.identities["default.web-1"].serial


def test_identity_reissued_on_rotation_tag_change_and_lifetime(tmp_path: Path) -> None:
    """pkg/xds/secrets/secrets.go shouldGenerateCerts: expiring soon, tags changed, mesh mTLS changed."""
    clock = [NOW]
    issuer = IdentityIssuer(StateDir(tmp_path), clock=lambda: clock[0])
    first = issuer.credentials(catalog(dataplane())).identities["default.web-1"]
    same = issuer.credentials(catalog(dataplane())).identities["default.web-1"]
    assert same is first
    clock[0] = first.rotate_at + datetime.timedelta(seconds=1)
    rotated = issuer.credentials(catalog(dataplane())).identities["default.web-1"]
    assert rotated.serial != first.serial
    tagged = issuer.credentials(catalog(dataplane(version="v2"))).identities["default.web-1"]
    assert "kuma://version/v2" in tagged.uris and tagged.serial != rotated.serial
    short = issuer.credentials(catalog(dataplane(version="v2"), mesh=mtls_mesh(expiration="1h")))
    assert short.identities["default.web-1"].not_after - short.identities["default.web-1"].generation == (
        datetime.timedelta(hours=1)
    )
    assert issuer.issued == 4


def test_no_mtls_no_credentials(tmp_path: Path) -> None:
    creds = IdentityIssuer(StateDir(tmp_path)).credentials(catalog(dataplane(), mesh=Mesh(name="default")))
    assert not creds.meshes and not creds.identities and creds.next_rotation() is None


def test_provided_ca_is_used_and_checked(tmp_path: Path) -> None:
    ca = new_root_ca("default")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(ca.key_pem)
    conf = {"cert": {"file": str(tmp_path / "ca.crt")}, "key": {"file": str(tmp_path / "ca.key")}}
    mesh = Mesh.model_validate(
        {
            "name": "default",
            "spec": {"mtls": {"enabledBackend": "p", "backends": [{"name": "p", "type": "provided", "conf": conf}]}},
        }
    )
    creds = IdentityIssuer().credentials(catalog(dataplane(), mesh=mesh))
    assert creds.meshes["default"].ca_fingerprint == ca.fingerprint
    leaf = issue_identity(ca, "default", ["spiffe://default/x"])
    (tmp_path / "ca.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "ca.key").write_bytes(leaf.key_pem)
    with pytest.raises(ValueError, match="basic constraint 'CA'"):
        IdentityIssuer().credentials(catalog(dataplane(), mesh=mesh))


def test_control_plane_tls_is_created_once(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    first = control_plane_tls(state)
    second = control_plane_tls(state)
    assert first.created and not second.created
    assert first.ca_fingerprint == second.ca_fingerprint and first.cert_pem == second.cert_pem
    cert = x509.load_pem_x509_certificate(first.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    third = control_plane_tls(state, ["cp.example"])
    assert third.cert_pem != first.cert_pem and third.ca_fingerprint == first.ca_fingerprint


# --------------------------------------------------------------------------- tokens


@pytest.fixture()
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path)


def signed(state: StateDir, **kw: object) -> str:
    found = state.signing_key("default")
    assert found is not None
    kid, key = found
    args: dict[str, object] = {"name": "web-1", "mesh": "default", "valid_for": datetime.timedelta(hours=1)} | kw
    return issue_token(key, kid, **args)  # type: ignore[arg-type]


def test_token_has_kumas_shape(state: StateDir) -> None:
    """pkg/core/tokens/issuer.go + pkg/tokens/builtin/issuer/token.go: RS256, kid, capitalised claims."""
    token = signed(state, tags={"kuma.io/service": ["web"]})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == "1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"Name", "Mesh", "Tags", "Type", "Workload", "jti", "iat", "nbf", "exp"}
    assert claims["Tags"] == {"kuma.io/service": ["web"]}
    assert claims["iat"] == claims["nbf"] and claims["exp"] - claims["iat"] == 3600 + 5
    assert state.signing_key_path("default", "1").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_token_checks_name_mesh_tags(state: StateDir) -> None:
    """pkg/xds/auth/universal/authenticator.go authDataplane: Kuma's messages."""
    claims = verify_token(signed(state, tags={"kuma.io/service": ["web"]}), "default", state.public_key)
    authorize(claims, "web-1", "default", {"kuma.io/service": {"web"}})
    with pytest.raises(PermissionDenied, match="proxy name from requestor: web-2 is different than in token: web-1"):
        authorize(claims, "web-2", "default", {"kuma.io/service": {"web"}})
    with pytest.raises(PermissionDenied, match="proxy mesh from requestor: other is different"):
        authorize(claims, "web-1", "other", {"kuma.io/service": {"web"}})
    with pytest.raises(PermissionDenied, match=re.escape('dataplane contains tag "kuma.io/service" with value "db"')):
        authorize(claims, "web-1", "default", {"kuma.io/service": {"db"}})
    with pytest.raises(
        PermissionDenied, match=re.escape('dataplane has no tag "kuma.io/service" required by the token')
    ):
        authorize(claims, "web-1", "default", {})


def test_token_failures_are_unauthenticated(state: StateDir) -> None:
    """pkg/core/tokens/validator.go: kid required, RS256 only, expiry, revocation; a clear missing-header text."""
    with pytest.raises(Unauthenticated, match="authorization"):
        verify_token("", "default", state.public_key)
    assert "meshxds token" in MISSING_TOKEN
    with pytest.raises(Unauthenticated, match="could not parse token"):
        verify_token("not.a.jwt", "default", state.public_key)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(signed(state, now=past), "default", state.public_key)
    hs = jwt.encode({"Name": "web-1", "exp": 2**40}, "secret" * 8, algorithm="HS256", headers={"kid": "1"})
    with pytest.raises(Unauthenticated, match="unsupported token alg HS256"):
        verify_token(hs, "default", state.public_key)
    token = signed(state)
    with pytest.raises(Unauthenticated, match='Secret of name "dataplane-token-signing-key-other-1" in mesh "other"'):
        verify_token(token, "other", state.public_key)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    state.revoke("default", jti)
    with pytest.raises(Unauthenticated, match="token is revoked"):
        verify_token(token, "default", state.public_key, state.revoked("default"))
    other = StateDir(state.root / "elsewhere")
    with pytest.raises(Unauthenticated, match="Signature verification failed"):
        verify_token(signed(other), "default", state.public_key)
