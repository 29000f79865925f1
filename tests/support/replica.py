"""``meshxds serve --store postgres://...`` as a real subprocess, for replica tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.net import free_port
from tests.support.poll import wait_until


class Replica:
    """One control-plane process on fixed ports (so a restart keeps its addresses)."""

    def __init__(self, url: str, workdir: Path, name: str) -> None:
        self.url = url
        self.name = name
        self.log = workdir / f"{name}.log"
        self.ads_port = free_port()
        self.api_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> Replica:
        cmd = [sys.executable, "-m", "meshxds.cli.main", "serve", "--store", self.url,
               "--port", str(self.ads_port), "--api-port", str(self.api_port), "--insecure"]  # fmt: skip
        env = {**os.environ, "MESHXDS_LOG": "INFO"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        wait_until(lambda: self.get("/")["product"] == "meshxds", 20.0, interval=0.05, what=f"{self.name} API")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=5) as resp:
            return json.loads(resp.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(self.api + "/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
