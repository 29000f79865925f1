"""The codebase's own shape: one top-level package in the wheel, imports that only point forward, no reads of
another package's private names, and generic top-level names elsewhere on the path cannot shadow ours."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower layers first; a module may import its own layer or a lower one. Same-layer packages may import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("codec",),
    ("resources",),
    ("security",),
    ("translators",),
    ("snapshots",),
    ("xds",),
    ("store",),
    ("control",),
    ("api", "migrate"),
    ("cli", "demo"),
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def stage_packages() -> list[str]:
    """The stage folders ``meshxds/`` links to."""
    return sorted(p.name for p in (ROOT / "meshxds").iterdir() if p.is_symlink())


def meshxds_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported stage package, imported names) for every ``meshxds.<pkg>`` import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "meshxds" and len(parts) > 1:
                out.append((node.lineno, parts[1], [a.name for a in node.names]))
            elif parts == ["meshxds"]:
                out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "meshxds" and len(parts) > 1:
                    out.append((node.lineno, parts[1], []))
    return out


def test_every_stage_has_a_layer() -> None:
    unknown = [pkg for pkg in stage_packages() if pkg not in RANK]
    assert not unknown, f"add {unknown} to LAYERS in {Path(__file__).name}"
    assert {"codec", "resources", "translators", "snapshots", "xds", "cli"} <= set(stage_packages())


def test_imports_only_point_forward_and_never_read_private_names() -> None:
    problems = []
    for pkg in stage_packages():
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for line, target, names in meshxds_imports(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if target not in RANK:
                    problems.append(f"{where}: imports unknown package meshxds.{target}")
                elif RANK[target] > RANK[pkg]:
                    problems.append(f"{where}: {pkg} imports upward from {target}")
                private = [n for n in names if n.startswith("_")]
                if target != pkg and private:
                    problems.append(f"{where}: {pkg} reads {target}'s private names {private}")
    assert not problems, "\n".join(problems)


def test_a_checker_that_sees_an_upward_import(tmp_path: Path) -> None:
    """The walker itself finds imports (so the test above cannot pass by finding nothing)."""
    sample = tmp_path / "m.py"
    sample.write_text("from meshxds.cli.main import main\nimport meshxds.xds.server\nfrom meshxds import codec\n")
    assert meshxds_imports(sample) == [(1, "cli", ["main"]), (2, "xds", []), (3, "codec", [])]


def test_generic_top_level_names_elsewhere_do_not_shadow_ours(tmp_path: Path) -> None:
    """PyPI's ``xds-protos`` installs a top-level ``xds`` and ``translators`` is a popular package: put such packages
    first on the path and check that every module we import still comes from this checkout."""
    for name in ("xds", "translators", "resources", "snapshots", "codec", "cli"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('shadow package imported')\n")
    probe = (
        "import importlib, sys\n"
        "mods = ['meshxds.xds.server', 'meshxds.translators.proxy', 'meshxds.snapshots.builder', "
        "'meshxds.resources.loader', 'meshxds.codec.encode', 'meshxds.cli.main']\n"
        "files = [importlib.import_module(m).__file__ for m in mods]\n"
        "assert not {'xds', 'translators', 'resources', 'snapshots', 'codec', 'cli'} & set(sys.modules), sys.modules\n"
        "print('\\n'.join(files))\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    files = run.stdout.split()
    assert len(files) == 6
    assert all(Path(f).resolve().is_relative_to(ROOT) for f in files), files


@pytest.mark.real
def test_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("meshxds-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"meshxds"}
    # Every stage folder is in it, as a subpackage of meshxds.
    for pkg in stage_packages():
        assert f"meshxds/{pkg}/__init__.py" in names, pkg
