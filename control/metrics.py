"""Prometheus metrics with Kuma's names where Kuma has one (pkg/xds/metrics/metrics.go,
pkg/util/xds/stats_callbacks.go, pkg/metrics/store/store.go, pkg/metrics/components/cp_info.go).

Counters of the xDS streams are read from the cache's per-node status at scrape time, so the ADS
server needs no hooks: ``xds_requests_received{confirmation=ACK|NACK,type_url}``,
``xds_responses_sent{type_url}``, ``xds_streams_active`` and the per-node ``meshxds_xds_nacks{node}``.
``xds_generation`` and ``xds_delivery`` are summaries in milliseconds, as in Kuma.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from meshxds.xds.cache import SnapshotCache

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StreamCollector(Collector):
    """The xDS counters, summed over the cache's NodeStatus records at scrape time."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        received = CounterMetricFamily(
            "xds_requests_received",
            "Number of confirmations requests from a client",
            labels=["confirmation", "type_url"],
        )
        sent = CounterMetricFamily("xds_responses_sent", "Number of responses sent by the server", labels=["type_url"])
        nacks = CounterMetricFamily("meshxds_xds_nacks", "NACKs received, per node", labels=["node"])
        acks: dict[tuple[str, str], int] = {}
        responses: dict[str, int] = {}
        active = 0
        for node, status in list(self.cache.status.items()):
            active += status.streams
            if status.nacks:
                nacks.add_metric([node], status.nacks)
            for type_url, ts in status.types.items():
                acks[("ACK", type_url)] = acks.get(("ACK", type_url), 0) + ts.acks
                acks[("NACK", type_url)] = acks.get(("NACK", type_url), 0) + ts.nacks
                responses[type_url] = responses.get(type_url, 0) + ts.responses
        for (confirmation, type_url), n in sorted(acks.items()):
            received.add_metric([confirmation, type_url], n)
        for type_url, n in sorted(responses.items()):
            sent.add_metric([type_url], n)
        streams = GaugeMetricFamily("xds_streams_active", "Number of active connections between a server and a client")
        streams.add_metric([], active)
        yield received
        yield sent
        yield streams
        yield nacks


class Metrics:
    """One registry per control plane (tests run several in one process)."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.generation = Summary("xds_generation", "Summary of XDS Snapshot generation (ms)", registry=r)
        self.generation_errors = Counter("xds_generation_errors", "Counter of errors during XDS generation", registry=r)
        self.delivery = Summary("xds_delivery", "Summary of XDS config delivery: snapshot set to ACK (ms)", registry=r)
        self.catalog_build = Histogram(
            "meshxds_catalog_build_seconds", "Time to assemble the Catalog from the store's records", registry=r
        )
        self.store = Histogram(
            "store", "Summary of Store operations (seconds)", ["operation", "resource_type"], registry=r
        )
        self.store_conflicts = Counter(
            "store_conflicts", "Counter of store conflicts while update", ["resource_type"], registry=r
        )
        self.leader = Gauge("leader", "1 indicates that this instance is leader", registry=r)
        self.changes = Counter("meshxds_store_changes", "Change notifications applied", ["action"], registry=r)
        r.register(StreamCollector(cache))
        self._acks: dict[tuple[str, str], int] = {}

    def observe_store(self, operation: str, seconds: float, resource_type: str = "") -> None:
        self.store.labels(operation, resource_type).observe(seconds)

    def sample_delivery(self, cache: SnapshotCache, set_at: Callable[[str], float | None]) -> None:
        """Observe snapshot-set → ACK for every type whose ACK count moved and matches the current version."""
        for node, status in list(cache.status.items()):
            snap = cache.get(node)
            since = set_at(node)
            if snap is None or since is None:
                continue
            for type_url, ts in status.types.items():
                key = (node, type_url)
                if self._acks.get(key) == ts.acks:
                    continue
                self._acks[key] = ts.acks
                if ts.acked_version == snap.versions.get(type_url) and ts.acked_at >= since:
                    self.delivery.observe((ts.acked_at - since) * 1000)

    def text(self) -> bytes:
        return generate_latest(self.registry)
