"""``meshxds dump``: one node as JSON, every node into a folder, clear errors, byte-stable output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshxds.cli.main import main

DEMO = Path(__file__).parent / "golden" / "modes-everywhere" / "input"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dump", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_node_prints_one_json_object_with_the_five_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(DEMO), "--node", "default.client-rb-port")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["clusters", "endpoints", "listeners", "routes", "version"]
    assert [c["name"] for c in data["clusters"]] == sorted(c["name"] for c in data["clusters"])
    assert all(r["@type"].startswith("type.googleapis.com/envoy.config.") for r in data["listeners"])
    assert "default_backend__default_msvc_8080" in {c["name"] for c in data["clusters"]}


def test_output_is_byte_identical_across_processes() -> None:
    cmd = [sys.executable, "-m", "meshxds.cli.main", "dump", str(DEMO), "--node", "default.client-none"]
    first = subprocess.run(cmd, capture_output=True, check=True).stdout
    second = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert first == second and first.startswith(b"{")


def test_all_nodes_writes_one_file_per_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(DEMO), "--all-nodes", "--out-dir", str(tmp_path / "out"))
    assert code == 0 and "wrote 7 snapshot(s)" in err
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files[0] == "default.backend-1.json" and len(files) == 7
    code, out, _ = run(capsys, str(DEMO), "--node", "default.backend-1")
    assert (tmp_path / "out" / "default.backend-1.json").read_text() == out


def test_all_nodes_needs_an_out_dir(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(DEMO), "--all-nodes")
    assert code == 2 and "--out-dir" in err


def test_unknown_node_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(DEMO), "--node", "default.nope")
    assert code == 1 and out == ""
    assert err.startswith("error: unknown node 'default.nope'; known nodes: default.backend-1, default.client-none")
    assert "Traceback" not in err


def test_load_errors_are_reported_like_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("type: Dataplane\nname: x\nmesh: default\nspec: {}\n")
    code, out, err = run(capsys, str(tmp_path), "--node", "default.x")
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith(f"error: {tmp_path / 'bad.yaml'}: document 1:")
    assert err.rstrip().endswith("error(s)")


def test_warnings_go_to_stderr_and_stdout_stays_json(capsys: pytest.CaptureFixture[str]) -> None:
    conflict = Path(__file__).parent / "golden" / "port-conflict" / "input"
    code, out, err = run(capsys, str(conflict), "--node", "default.redis-2")
    assert code == 0 and json.loads(out)["version"]
    assert err.startswith("warning: ") and "port conflict" in err


def test_dns_port_adds_the_dns_listener(capsys: pytest.CaptureFixture[str]) -> None:
    """``--dns-port``: as if the sidecar's node metadata carried ``dataplane.dns.port`` (Kuma's DNSGenerator)."""
    _, plain, _ = run(capsys, str(DEMO), "--node", "default.client-none")
    code, out, _ = run(capsys, str(DEMO), "--node", "default.client-none", "--dns-port", "15054")
    assert code == 0
    before = {lis["name"] for lis in json.loads(plain)["listeners"]}
    listeners = {lis["name"]: lis for lis in json.loads(out)["listeners"]}
    assert set(listeners) - before == {"kuma:dns"}
    assert listeners["kuma:dns"]["address"]["socketAddress"] == {
        "address": "127.0.0.1",
        "portValue": 15054,
        "protocol": "UDP",
    }
