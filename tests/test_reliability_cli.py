"""``meshxds serve`` under signals and misuse, as an operator meets it: one clear line per event.

Before: SIGHUP killed the server (exit 129), SIGTERM with open streams logged CancelledError
tracebacks and no shutdown line, and "port in use" came after loading every file as a 30-line error.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.example import ROOT, private_copy
from tests.support.net import free_port, http_get
from tests.support.poll import wait_until

pytestmark = pytest.mark.real


def start(folder: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[str], int, int]:
    port, debug = free_port(), free_port()
    cmd = [sys.executable, "-m", "meshxds.cli.main", "serve", str(folder), "--port", str(port),
           "--debug-port", str(debug), "--insecure", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True)
    wait_until(lambda: http_get("127.0.0.1", debug, "/readyz")[0] == 200, 20.0, what="serve ready")
    return proc, port, debug


def served(debug: int) -> int:
    return int(json.loads(http_get("127.0.0.1", debug, "/readyz")[1])["nodes"])


def test_sighup_reloads_and_sigterm_stops_with_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    private_copy(folder)
    log = tmp_path / "serve.log"
    # A poll interval of an hour: only SIGHUP can make it read the edit.
    proc, _, debug = start(folder, log, "--poll-interval", "3600")
    try:
        assert served(debug) == 6
        (folder / "10-web.yaml").unlink()
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served(debug) == 4, 10.0, what="the SIGHUP reload")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    text = log.read_text()
    assert code == 0
    assert "SIGHUP: reloading the input" in text
    assert [line for line in text.splitlines() if "SIGTERM: stopped in" in line]
    assert "Traceback" not in text and "CancelledError" not in text
    assert "open files limit: " in text


def test_port_in_use_is_one_line_before_any_input_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    private_copy(folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "meshxds.cli.main", "serve", str(folder), "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"error: address 127.0.0.1:{port} is already in use"
    assert "loaded" not in proc.stderr and "Traceback" not in proc.stderr


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    folder = tmp_path / "mesh"
    private_copy(folder)
    log = tmp_path / "serve.log"
    proc, _, debug = start(folder, log, "--log-format", "json", "--poll-interval", "0.05")
    try:
        web = folder / "10-web.yaml"
        web.write_text(web.read_text().replace("port: 20080", "port: 99999"))
        wait_until(lambda: http_get("127.0.0.1", debug, "/readyz")[1].count("degraded") > 0, 10.0, what="degraded")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "ERROR" and "must be between 1 and 65535" in r["message"] for r in records)
    assert any(r["level"] == "WARNING" and r["message"].startswith("SIGTERM: stopped in") for r in records)
