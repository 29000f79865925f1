"""``python -m bench.health``: how long a stopped (or restarted) app takes to leave (or rejoin) a client's endpoints.

One probed backend sidecar, one unprobed, one client sidecar, all real Envoys on the real service; the probed
app is stopped and started ``--rounds`` times. Each figure is from the app's stop (start) until the client
Envoy's ``/clusters`` no longer (again) lists the endpoint, at a random phase of the report cycle, and the
control plane's share: from the report's arrival to the client's change. Runs once with Kuma's HDS defaults
(a report every 5 s) and once with a quick report interval.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from meshxds.control.background import Background
from meshxds.control.service import Service
from meshxds.demo.loopback import EchoServer, free_port
from meshxds.demo.sidecar import Envoy, poll
from meshxds.translators.health import HdsSettings
from meshxds.xds.bootstrap import bootstrap_config

INPUT = """\
type: Mesh
name: default
---
type: Dataplane
name: api-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - {{port: {probed}, servicePort: {app}, serviceProbe: {{tcp: {{}}}}, tags: {{kuma.io/service: api}}}}
---
type: Dataplane
name: api-2
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - {{port: {plain}, servicePort: {plain_app}, tags: {{kuma.io/service: api}}}}
---
type: Dataplane
name: client-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - {{port: {client}, tags: {{kuma.io/service: client}}}}
  outbound:
    - {{port: {outbound}, tags: {{kuma.io/service: api}}}}
"""


def run(settings: HdsSettings, rounds: int, workdir: Path) -> dict[str, Any]:
    ports = {k: free_port() for k in ("probed", "app", "plain", "plain_app", "client", "outbound")}
    folder = workdir / "mesh"
    folder.mkdir()
    (folder / "mesh.yaml").write_text(INPUT.format(**ports))
    probed = f"127.0.0.1:{ports['probed']}"
    loop = Background("bench-health")
    service = Service([folder], poll_interval=0.02, hds=settings)
    app, other = EchoServer(port=ports["app"]).start(), EchoServer(port=ports["plain_app"]).start()
    envoys: list[Envoy] = []
    try:
        loop.run(service.start("127.0.0.1", 0))
        for name in ("api-1", "api-2", "client-1"):
            envoys.append(Envoy(bootstrap_config(f"default.{name}", ads_port=service.ads.port), workdir, name).start())
        client = envoys[-1]

        if not poll(lambda: _listed_is(client, probed, True), 60):
            raise RuntimeError("the probed endpoint never became Ready")
        removal: list[float] = []
        rejoin: list[float] = []
        pushed: list[float] = []  # from the report's arrival to the client's change: the control plane's share
        rng = random.Random(0)
        for _ in range(rounds):
            for stop in (True, False):
                time.sleep(rng.uniform(0, settings.interval.total_seconds()))  # any phase of the report cycle
                t0 = time.monotonic()
                if stop:
                    app.stop()
                else:
                    app.start()
                if not poll(lambda: _listed_is(client, probed, not stop), 60):  # noqa: B023 (called right here)
                    raise RuntimeError("the client never followed")
                done = time.monotonic()
                (removal if stop else rejoin).append(done - t0)
                pushed.append(done - loop.call(lambda: service.reports.changed_at))
        return {
            "report_interval_s": settings.interval.total_seconds(),
            "check_interval_s": settings.check_interval.total_seconds(),
            "rounds": rounds,
            "stop_to_removed_s": _summary(removal),
            "start_to_rejoined_s": _summary(rejoin),
            "report_to_client_s": _summary(pushed),
        }
    finally:
        for envoy in envoys:
            envoy.stop()
        app.stop()
        other.stop()
        loop.run(service.stop())
        loop.close()


def _listed_is(client: Envoy, endpoint: str, want: bool) -> bool:
    return (endpoint in client.hosts("api")) is want


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.health", description=__doc__)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick-interval", type=float, default=0.5, help="report interval of the second run (s)")
    args = p.parse_args(argv)
    results = []
    for settings in (HdsSettings(), HdsSettings(interval=timedelta(seconds=args.quick_interval))):
        with tempfile.TemporaryDirectory(prefix="bench-health-") as tmp:
            results.append(run(settings, args.rounds, Path(tmp)))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
