"""A real Envoy applying N EDS clusters from meshxds, next to the time meshxds spends sending them.

Envoy's apply time runs from our first response on its stream until its admin stats show every
cluster active (``cluster_manager.active_clusters`` = N + the static xds cluster) and none warming.
Our send time is the time the server spends in its stream code (building responses) plus awaiting
``context.write`` for them (an upper bound: a write may also wait on Envoy's flow control).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from bench import samples
from meshxds.demo.sidecar import Envoy
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Entry, Snapshot
from meshxds.xds.bootstrap import bootstrap_config
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import AdsServer
from meshxds.xds.sotw import SotwStream

NODE = "default.bench-envoy"


@dataclass
class SendClock:
    """Time spent in our code for one stream, and when the first response went out."""

    build_s: float = 0.0  # inside the stream's responses(): deciding and framing
    write_s: float = 0.0  # awaiting context.write (includes waiting for Envoy to read)
    first_at: float = 0.0
    responses: int = 0
    bytes: int = 0


CLOCK = SendClock()


class TimedSotw(SotwStream):
    def responses(self, snap: Snapshot | None, now: float) -> list[bytes]:
        start = time.perf_counter()
        out = super().responses(snap, now)
        CLOCK.build_s += time.perf_counter() - start
        return out


class TimedContext:
    """Passes everything to the gRPC context; times ``write``."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def write(self, message: bytes) -> None:
        start = time.perf_counter()
        if not CLOCK.first_at:
            CLOCK.first_at = time.monotonic()
        await self._context.write(message)
        CLOCK.write_s += time.perf_counter() - start
        CLOCK.responses += 1
        CLOCK.bytes += len(message)


class TimedServer(AdsServer):
    async def sotw(self, requests: AsyncIterator[bytes], context: Any) -> None:
        await self._serve(TimedSotw, requests, TimedContext(context))


def snapshot(clusters: int) -> Snapshot:
    """N EDS clusters over ADS, each with a 3-endpoint CLA (metadata-free, like a plain Kuma EDS cluster)."""

    def entries() -> Iterator[Entry]:
        for i in range(clusters):
            name = f"svc-{i:05d}_80"
            endpoints = [(f"10.{i >> 8 & 255}.{i & 255}.{k + 1}", 8080) for k in range(3)]
            yield Entry.of(CLUSTER, name, samples.cluster(name))
            yield Entry.of(ENDPOINT, name, samples.load_assignment(name, endpoints, metadata=False))

    return Snapshot.of(NODE, entries())


def cluster_counts(envoy: Envoy) -> tuple[int, int]:
    """(active, warming) clusters; the admin API shares Envoy's busy main thread, so allow it to answer late."""
    try:
        text = envoy.get("/stats?filter=cluster_manager", timeout=60)
    except OSError:
        return 0, -1
    values = dict(line.partition(": ")[::2] for line in text.splitlines())
    return int(values.get("cluster_manager.active_clusters", 0)), int(
        values.get("cluster_manager.warming_clusters", -1)
    )


@dataclass(frozen=True)
class ApplyResult:
    clusters: int
    apply_s: float  # Envoy: our first response -> all clusters active, none warming
    send_s: float  # us: stream code + writes
    build_s: float  # of which: deciding and framing responses (our CPU)
    write_s: float  # of which: awaiting gRPC writes (upper bound: includes Envoy's flow control)
    responses: int
    megabytes: float
    envoy_heap_mb: float  # server.memory_allocated


def apply(clusters: int, timeout: float = 300.0) -> ApplyResult:
    return asyncio.run(_apply(clusters, timeout))


async def _apply(clusters: int, timeout: float) -> ApplyResult:
    global CLOCK
    CLOCK = SendClock()
    cache = SnapshotCache()
    cache.set(NODE, snapshot(clusters))
    server = TimedServer(cache)
    port = await server.start("127.0.0.1", 0)
    envoy = Envoy(bootstrap_config(NODE, ads_port=port), name="bench-envoy", log_level="warning")
    try:
        await asyncio.to_thread(envoy.start)
        deadline = time.monotonic() + timeout
        while True:
            active, warming = await asyncio.to_thread(cluster_counts, envoy)
            if active >= clusters + 1 and warming == 0:
                done = time.monotonic()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Envoy applied {active} of {clusters + 1} clusters ({warming} warming)")
            await asyncio.sleep(0.2)
        heap = await asyncio.to_thread(envoy.stat, "server.memory_allocated")
    finally:
        await asyncio.to_thread(envoy.stop)
        await server.stop(0)
    return ApplyResult(
        clusters=clusters,
        apply_s=done - CLOCK.first_at,
        send_s=CLOCK.build_s + CLOCK.write_s,
        build_s=CLOCK.build_s,
        write_s=CLOCK.write_s,
        responses=CLOCK.responses,
        megabytes=CLOCK.bytes / 1e6,
        envoy_heap_mb=heap / 1e6,
    )
