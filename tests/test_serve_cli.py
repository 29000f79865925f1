"""``meshxds serve`` as a user runs it: a subprocess, its debug endpoint, reload messages, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.example import ROOT, private_copy
from tests.support.net import free_port, http_get
from tests.support.poll import wait_until


def test_serve_reports_bad_edits_like_validate_and_stops_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    private_copy(folder)
    port, debug = free_port(), free_port()
    cmd = [sys.executable, "-m", "meshxds.cli.main", "serve", str(folder), "--port", str(port),
           "--debug-port", str(debug), "--poll-interval", "0.05", "--insecure"]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            wait_until(lambda: http_get("127.0.0.1", debug, "/healthz")[0] == 200, 20.0, what="serve up")
            nodes = json.loads(http_get("127.0.0.1", debug, "/snapshots")[1])["nodes"]
            assert len(nodes) == 6
            # A broken edit: the same error line as `meshxds validate`, and the old snapshots stay.
            web = folder / "10-web.yaml"
            web.write_text(web.read_text().replace("port: 20080", "port: 99999"))
            wait_until(lambda: "still serving the last good snapshots" in log.read_text(), 5.0, what="error report")
            validate = subprocess.run(
                [sys.executable, "-m", "meshxds.cli.main", "validate", str(folder)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            errors = [line for line in validate.stderr.splitlines() if line.startswith("error: ")]
            assert errors and all(line in log.read_text() for line in errors)
            assert json.loads(http_get("127.0.0.1", debug, "/snapshots")[1])["nodes"] == nodes
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(10)
    assert code == 0
    assert f"ADS on 127.0.0.1:{port}" in log.read_text()


def test_serve_refuses_missing_paths(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meshxds.cli.main", "serve", str(tmp_path / "nope"), "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "no such file or directory" in proc.stderr and "nope" in proc.stderr
