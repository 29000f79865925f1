"""Live legacy-traffic evidence: Envoy's metrics service on the ADS port, and ``migrate plan --server``.

Envoy side: ``envoy.stat_sinks.metrics_service`` (``MetricsServiceConfig``, ``report_counters_as_deltas``)
streams ``envoy.service.metrics.v3.StreamMetricsMessage`` every ``stats_flush_interval``; the identifier (node)
comes in the first message only. Cluster counters are named ``cluster.<name>.<counter>``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from envoy_data_plane.envoy.config.core.v3 import Node
from envoy_data_plane.envoy.service.metrics.v3 import StreamMetricsMessage, StreamMetricsMessageIdentifier
from envoy_data_plane.io.prometheus.client import Counter, Metric, MetricFamily, MetricType

from meshxds.cli.main import main
from meshxds.demo.loopback import proxied_get
from meshxds.demo.redirect import with_redirect_listener
from meshxds.migrate.plan import make_plan
from meshxds.migrate.traffic import fetch
from meshxds.resources.model import MeshServicesMode
from meshxds.xds.bootstrap import bootstrap_config
from meshxds.xds.metrics_sink import TrafficStore, parse_report, prometheus_text
from tests.support.ads import ServiceThread
from tests.support.envoy import Envoy
from tests.support.net import EchoServer, free_port, http_get
from tests.support.poll import wait_until

FLUSH = 0.5  # seconds between Envoy's stats flushes in the real-Envoy test


def family(name: str, *values: float) -> MetricFamily:
    metrics = [Metric(counter=Counter(value=v)) for v in values]
    return MetricFamily(name=name, type=MetricType.COUNTER, metric=metrics)


def test_parse_report_reads_cluster_counters_only() -> None:
    message = StreamMetricsMessage(
        identifier=StreamMetricsMessageIdentifier(node=Node(id="default.web")),
        envoy_metrics=[
            family("cluster.backend.upstream_rq_total", 3.0),
            family("cluster.default_db__east_msvc_5432.upstream_cx_tx_bytes_total", 100.0),
            family("cluster.default_db__east_msvc_5432.upstream_cx_rx_bytes_total", 50.0),
            family("cluster.a.b.upstream_cx_total", 1.0, 1.0),  # a dot in a cluster name stays in the name
            family("http.ingress.downstream_rq_total", 9.0),
            family("cluster.backend.upstream_rq_timeout", 7.0),
        ],
    )
    node, counters = parse_report(bytes(message))
    assert node == "default.web"
    assert counters == {
        "backend": {"requests": 3.0},
        "default_db__east_msvc_5432": {"bytes": 150.0},
        "a.b": {"connections": 2.0},
    }
    assert (
        parse_report(bytes(StreamMetricsMessage(envoy_metrics=[family("cluster.x.upstream_rq_total", 1)])))[0] is None
    )


def test_store_rates_over_the_interval_between_reports() -> None:
    now = [100.0]
    store = TrafficStore(clock=lambda: now[0])
    store.report("default.web", {"backend": {"requests": 10.0}}, since=98.0)
    assert store.flows["default.web"]["backend"].requests_per_s == 5.0
    now[0] = 104.0
    store.report("default.web", {"backend": {"requests": 0.0, "bytes": 0.0}}, since=98.0)
    flow = store.flows["default.web"]["backend"]
    assert flow.requests_per_s == 0.0 and not flow.in_use
    assert store.as_json()["default.web"]["backend"]["ageSeconds"] == 0.0
    text = prometheus_text(store)
    assert "# TYPE meshxds_proxy_cluster_requests_per_second gauge" in text
    assert 'meshxds_proxy_cluster_requests_per_second{node="default.web",cluster="backend"} 0\n' in text


MESH = """
type: Mesh
name: default
meshServices:
  mode: Everywhere
---
# The upstream is a plain HTTP/1.1 server on the loopback without a sidecar of its own, so the service is
# tcp (outbound HTTP clusters speak HTTP/2 to the upstream sidecar); traffic shows as bytes, not requests.
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: {backend_port}
      tags:
        kuma.io/service: backend
---
type: Dataplane
name: web
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: {web_port}
      tags:
        kuma.io/service: web
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
"""


class Sender:
    """Sends GETs through the web sidecar to the legacy VIP of backend until stopped."""

    def __init__(self, via: tuple[str, int], vip: tuple[str, int]) -> None:
        self.via, self.vip = via, vip
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if proxied_get(self.via, self.vip)[0] == 200:
                    self.sent += 1
            except OSError:
                pass
            self._stop.wait(0.02)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, ServiceThread, Envoy, tuple[str, int]]]:
    with EchoServer(body="backend") as backend:
        folder = tmp_path / "mesh"
        folder.mkdir()
        (folder / "mesh.yaml").write_text(MESH.format(backend_port=backend.port, web_port=free_port()))
        with ServiceThread([folder]) as server:
            redirect = free_port()
            config = bootstrap_config("default.web", ads_port=server.port, stats_flush_interval=FLUSH)
            config = with_redirect_listener(config, "127.0.0.1", redirect)
            with Envoy(config, tmp_path, "web") as envoy:
                yield folder, server, envoy, ("127.0.0.1", redirect)


def traffic(server: ServiceThread) -> dict[str, Any]:
    status, body = http_get("127.0.0.1", server.service.debug.port, "/traffic")
    assert status == 200
    data: dict[str, Any] = json.loads(body)
    return data


@pytest.mark.real
def test_real_envoy_legacy_destination_in_use_then_idle(
    running: tuple[Path, ServiceThread, Envoy, tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, server, _envoy, via = running
    vip = ("240.0.0.1", 80)  # legacy VIPs are given in sorted service order: backend first
    wait_until(lambda: proxied_get(via, vip)[0] == 200, 10.0, what="web → backend through the legacy VIP")
    url = f"http://127.0.0.1:{server.service.debug.port}"
    args = ["migrate", "plan", str(folder), "--to", "Exclusive", "--server", url, "--require-idle"]
    with Sender(via, vip) as sender:
        flow = wait_until(lambda: traffic(server)["default.web"]["backend"]["inUse"], 5 * FLUSH + 5, what="in use")
        assert flow is True and sender.sent > 0
        plan = make_plan([folder], "default", MeshServicesMode.EXCLUSIVE, traffic=fetch(url))
        busy = [(d.cluster, loss.node) for d, loss in plan.busy_losses]
        assert ("backend", "default.web") in busy
        metrics = http_get("127.0.0.1", server.service.debug.port, "/metrics")[1]
        assert 'meshxds_proxy_cluster_bytes_per_second{node="default.web",cluster="backend"} ' in metrics
        assert main(args) == 1  # traffic still flows to a destination that disappears
        out = capsys.readouterr().out
        assert "default.web: replaced by MeshService backend:" in out and "[IN USE: " in out
    stopped = time.monotonic()
    wait_until(lambda: not traffic(server)["default.web"]["backend"]["inUse"], 3 * FLUSH + 2, what="idle")
    idle_after = time.monotonic() - stopped
    assert idle_after < 3 * FLUSH + 2  # the first flush after the last request reports nothing moved
    assert main(args) == 0
    assert "default.web: replaced by MeshService backend:" in capsys.readouterr().out
    assert "[idle]" in main_output(args, capsys)


def main_output(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(args)
    return capsys.readouterr().out


def test_require_idle_needs_a_server_and_a_dead_server_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    case = Path(__file__).parent / "golden-migrate" / "modes" / "input"
    assert main(["migrate", "plan", str(case), "--zone", "east", "--to", "Exclusive", "--require-idle"]) == 2
    assert "--require-idle needs --server URL" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["migrate", "plan", str(case), "--zone", "east", "--to", "Exclusive", "--server", dead]) == 2
    assert capsys.readouterr().err.startswith(f"error: --server {dead!r}: cannot read {dead}/traffic")
