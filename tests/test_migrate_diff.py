"""``meshxds diff OLD NEW``: per proxy and resource, a unified diff of ``meshxds dump``'s JSON; exit 1 on any."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meshxds.cli.main import main
from meshxds.migrate.diff import diff_snapshots
from meshxds.migrate.inputs import load

CASE = Path(__file__).parent / "golden-migrate" / "modes" / "input"


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    """The golden mesh as Everywhere (old) and Exclusive (new)."""
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, mode in ((old, "Everywhere"), (new, "Exclusive")):
        shutil.copytree(CASE, folder)
        mesh = folder / "00-mesh.yaml"
        mesh.write_text(mesh.read_text().replace("mode: Disabled", f"mode: {mode}"))
    return old, new


def test_mode_switch_diff_names_proxy_resource_and_lines(
    two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = two
    assert main(["diff", str(old), str(new), "--zone", "east", "--node", "default.web"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("# default.web: proxy changed (")
    # The legacy backend cluster goes away whole: its every line is removed, from old to /dev/null.
    assert "--- old/default.web/clusters/backend\n+++ /dev/null\n" in out
    assert '-  "name": "backend",' in out
    assert "default.web-rs" not in out  # --node limits the output to one proxy


def test_diff_json_matches_the_snapshots(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = two
    assert main(["diff", str(old), str(new), "--zone", "east", "-o", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["differs"] is True
    a, b = load([old], "east"), load([new], "east")
    expected = diff_snapshots(a.snapshots, b.snapshots)
    assert [p["node"] for p in data["proxies"]] == [d.node for d in expected]
    web = next(p for p in data["proxies"] if p["node"] == "default.web")
    removed = {(r["type"], r["name"]) for r in web["resources"] if r["change"] == "removed"}
    assert ("clusters", "backend") in removed and ("listeners", "outbound:240.0.0.1:80") in removed
    # Only the resources that differ are listed: the MeshService clusters exist on both sides unchanged.
    names = {r["name"] for r in web["resources"]}
    assert "default_backend__east_msvc_8080" not in names


def test_identical_inputs_exit_0(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, _ = two
    assert main(["diff", str(old), str(old), "--zone", "east"]) == 0
    assert capsys.readouterr().out == "no differences\n"


def test_bad_input_and_unknown_node_exit_2(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = two
    (new / "20-clients.yaml").write_text("type: Dataplane\nname: web\nmesh: default\nnetworking: {address: 1, x: 2}\n")
    assert main(["diff", str(old), str(new), "--zone", "east"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {new / '20-clients.yaml'}: document 1: Dataplane default/web: ")
    assert main(["diff", str(old), str(old), "--zone", "east", "--node", "default.nope"]) == 2
    assert "error: unknown node 'default.nope'; known nodes: default.backend-1" in capsys.readouterr().err
