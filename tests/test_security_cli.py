"""``meshxds token`` and ``meshxds bootstrap --state-dir``: what a user runs to connect a sidecar securely."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
import yaml

from meshxds.cli.main import main
from meshxds.security.cptls import control_plane_tls
from meshxds.security.state import StateDir


def test_token_prints_a_kuma_token_without_newline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """app/kumactl/cmd/generate/generate_dataplane_token.go: the token on stdout, no trailing newline."""
    code = main(["token", "--node", "default.web-1", "--valid-for", "2h", "--tag", "kuma.io/service=web",
                 "--state-dir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0 and not out.out.endswith("\n")
    claims = jwt.decode(out.out, options={"verify_signature": False})
    assert (claims["Name"], claims["Mesh"], claims["Tags"]) == ("web-1", "default", {"kuma.io/service": ["web"]})
    assert claims["exp"] - claims["iat"] == 2 * 3600 + 5
    assert "token id (jti)" in out.err
    assert main(["token", "--node", "default.web-1", "--revoke", claims["jti"], "--state-dir", str(tmp_path)]) == 0
    assert StateDir(tmp_path).revoked("default") == {claims["jti"]}
    assert main(["token", "--node", "web-1", "--state-dir", str(tmp_path)]) == 2
    assert "expected MESH.NAME" in capsys.readouterr().err


def test_bootstrap_with_state_dir_adds_tls_and_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pkg/xds/bootstrap/template_v3.go: the token as ``authorization`` initial metadata, TLS to the server."""
    args = ["bootstrap", "--node", "default.web-1", "--ads", "127.0.0.1:18000", "--state-dir", str(tmp_path)]
    assert main(args) == 2
    assert "start `meshxds serve --state-dir` once first" in capsys.readouterr().err
    tls = control_plane_tls(StateDir(tmp_path))
    assert main(args) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    ads = config["dynamic_resources"]["ads_config"]["grpc_services"][0]
    [metadata] = ads["initial_metadata"]
    assert metadata["key"] == "authorization" and jwt.decode(metadata["value"], options={"verify_signature": False})
    socket = config["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    validation = socket["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["inline_string"] == tls.ca_pem.decode()
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}
    ]


MTLS_MESH = """
type: Mesh
name: default
mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: builtin}]}
---
type: Dataplane
name: web-1
mesh: default
networking:
  address: 127.0.0.1
  inbound: [{port: 8080, tags: {kuma.io/service: web}}]
"""


def test_dump_redacts_key_material(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mesh.yaml").write_text(MTLS_MESH)
    assert main(["dump", str(tmp_path), "--node", "default.web-1"]) == 0
    out = capsys.readouterr().out
    dump = json.loads(out)
    secrets = {s["name"]: s for s in dump["secrets"]}
    identity = secrets["identity_cert:secret:default"]["tlsCertificate"]
    assert identity["privateKey"] == {"inlineBytes": "[redacted]"}
    assert identity["certificateChain"] == {"inlineBytes": "[1 PEM certificate(s)]"}
    assert "LS0tLS1CRUdJTi" not in out  # no base64 PEM at all
