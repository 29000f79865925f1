"""Envoy's metrics service (``envoy.service.metrics.v3.MetricsService/StreamMetrics``) on the ADS server:
live evidence of which clusters still carry traffic, so ``migrate plan`` can say whether a destination
about to disappear is still in use.

``meshxds bootstrap`` points Envoy's ``envoy.stat_sinks.metrics_service`` at the same gRPC cluster as ADS,
with counters reported as deltas every ``stats_flush_interval``. Each report replaces the proxy's flows:
requests, connections and bytes per second per cluster over the last flush interval. Only the cluster
counters below are read; every other metric family is skipped on its name without being parsed further.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from meshxds.codec.wire import WireError, fields

log = logging.getLogger("meshxds.metrics")

SERVICE = "envoy.service.metrics.v3.MetricsService"
SINK_NAME = "envoy.stat_sinks.metrics_service"
SINK_TYPE = "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig"
COUNTERS = {
    b"upstream_rq_total": "requests",
    b"upstream_cx_total": "connections",
    b"upstream_cx_tx_bytes_total": "bytes",
    b"upstream_cx_rx_bytes_total": "bytes",
}


def sink_config(cluster: str = "xds_cluster") -> dict[str, Any]:
    """The bootstrap ``stats_sinks`` entry: the metrics service over the ADS cluster, counters as deltas."""
    return {
        "name": SINK_NAME,
        "typed_config": {
            "@type": SINK_TYPE,
            "transport_api_version": "V3",
            "report_counters_as_deltas": True,
            "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
        },
    }


@dataclass(frozen=True)
class Flow:
    """One cluster of one proxy over its last flush interval."""

    requests_per_s: float
    connections_per_s: float
    bytes_per_s: float
    at: float  # wall-clock time of the report

    @property
    def in_use(self) -> bool:
        """Requests or bytes moved: an idle pooled connection moves none, a long-lived TCP stream does."""
        return self.requests_per_s > 0 or self.bytes_per_s > 0

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "requestsPerSecond": round(self.requests_per_s, 3),
            "connectionsPerSecond": round(self.connections_per_s, 3),
            "bytesPerSecond": round(self.bytes_per_s, 3),
            "inUse": self.in_use,
            "ageSeconds": round(now - self.at, 3),
        }


class TrafficStore:
    """Per proxy, per cluster: the flows of the latest report. Lives on the server's event loop."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.flows: dict[str, dict[str, Flow]] = {}
        self._last: dict[str, float] = {}
        self.reports = 0

    def report(self, node: str, counters: dict[str, dict[str, float]], since: float) -> None:
        """``counters``: cluster → {requests, connections, bytes} deltas since the previous report (or ``since``)."""
        now = self.clock()
        interval = max(now - self._last.get(node, since), 1e-3)
        self._last[node] = now
        self.reports += 1
        self.flows[node] = {cluster: _flow(c, interval, now) for cluster, c in counters.items()}

    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        now = self.clock()
        return {
            node: {c: f.as_json(now) for c, f in sorted(flows.items())} for node, flows in sorted(self.flows.items())
        }


def prometheus_text(store: TrafficStore) -> str:
    """The flows as Prometheus gauges (``/metrics``), one series per proxy and cluster."""
    gauges = (
        ("requests", "requests_per_s", "Upstream requests per second over the last stats flush"),
        ("connections", "connections_per_s", "Upstream connections opened per second over the last stats flush"),
        ("bytes", "bytes_per_s", "Upstream bytes sent and received per second over the last stats flush"),
    )
    lines: list[str] = []
    for name, attr, help_text in gauges:
        metric = f"meshxds_proxy_cluster_{name}_per_second"
        lines += [f"# HELP {metric} {help_text}.", f"# TYPE {metric} gauge"]
        for node, flows in sorted(store.flows.items()):
            for cluster, flow in sorted(flows.items()):
                labels = f'node="{_escape(node)}",cluster="{_escape(cluster)}"'
                lines.append(f"{metric}{{{labels}}} {getattr(flow, attr):g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _flow(counters: dict[str, float], interval: float, now: float) -> Flow:
    rate = {k: counters.get(k, 0.0) / interval for k in ("requests", "connections", "bytes")}
    return Flow(rate["requests"], rate["connections"], rate["bytes"], now)


def parse_report(data: bytes) -> tuple[str | None, dict[str, dict[str, float]]]:
    """``StreamMetricsMessage`` → (node id if the message carries one, cluster → counter deltas)."""
    node: str | None = None
    out: dict[str, dict[str, float]] = {}
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):  # identifier { node { id } }
            for n, v in fields(value):
                if n == 1 and isinstance(v, bytes):
                    node = next((x.decode() for k, x in fields(v) if k == 1 and isinstance(x, bytes)), None)
        elif number == 2 and isinstance(value, bytes):  # io.prometheus.client.MetricFamily
            _family(value, out)
    return node, out


def _family(data: bytes, out: dict[str, dict[str, float]]) -> None:
    name = b""
    metrics: list[bytes] = []
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            name = value
            if not name.startswith(b"cluster."):
                return
        elif number == 4 and isinstance(value, bytes):
            metrics.append(value)
    cluster, _, counter = name[len(b"cluster.") :].rpartition(b".")
    kind = COUNTERS.get(counter)
    if kind is None or not cluster:
        return
    total = 0.0
    for metric in metrics:
        for number, value in fields(metric):
            if number == 3 and isinstance(value, bytes):  # counter { value: double }
                for n, v in fields(value, keep_fixed=True):
                    if n == 1 and isinstance(v, bytes) and len(v) == 8:
                        total += struct.unpack("<d", v)[0]
    bucket = out.setdefault(cluster.decode(), {})
    bucket[kind] = bucket.get(kind, 0.0) + total


class MetricsSink:
    """The gRPC side: one client stream per proxy; the first message names the node."""

    def __init__(self, store: TrafficStore) -> None:
        self.store = store

    def handler(self) -> Any:
        method = grpc.stream_unary_rpc_method_handler(self.stream)
        return grpc.method_handlers_generic_handler(SERVICE, {"StreamMetrics": method})

    async def stream(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        node: str | None = None
        since = self.store.clock()
        try:
            async for message in requests:
                named, counters = parse_report(message)
                node = node or named
                if node is None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first StreamMetricsMessage has no node")
                    return b""
                self.store.report(node, counters, since)
        except WireError as exc:
            log.warning("metrics stream from %s: malformed message: %s", node or context.peer(), exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed StreamMetricsMessage: {exc}")
        return b""  # StreamMetricsResponse {}
