"""Push-to-ACK latency over real ADS streams, and server memory per connected proxy.

The server (meshxds's own ``AdsServer``) runs in this process; the clients run in a separate one
(``bench.clients``) so they do not share the server's core. Latency is measured on the server:
from the moment the new snapshots are handed to the cache until the server has received each
affected node's ACK of the new EDS version.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from meshxds.control.heap import collector_paused
from meshxds.snapshots.snapshot import ENDPOINT, Snapshot
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import AdsServer


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class PushResult:
    streams: int
    eds_streams: int  # streams subscribed to some CLAs
    rds_streams: int  # streams subscribed to some RouteConfigurations
    reconnects: int  # client streams that failed and reconnected while syncing
    first_failure: str
    sync_s: float  # every stream connected and holding a full configuration
    affected: int  # streams whose EDS changed
    acked: int  # of those, how many ACKed the new version before the timeout
    p50_s: float
    p99_s: float
    max_s: float
    rss_per_stream: float  # server RSS growth from connecting the streams, per stream
    loop_lag_s: float | None = None  # worst event-loop lag while a full build ran in a worker thread
    lag_build_s: float = 0.0  # that build's duration


async def run(
    before: Mapping[str, Snapshot],
    after: Mapping[str, Snapshot],
    node_ids: list[str],
    *,
    streams_per_connection: int = 1,
    timeout: float = 600.0,
    rebuild: Callable[[], object] | None = None,
) -> PushResult:
    cache = SnapshotCache()
    cache.replace_all(before)
    server = AdsServer(cache)
    port = await server.start("127.0.0.1", 0)
    with tempfile.NamedTemporaryFile("w", suffix=".nodes", delete=False) as f:
        f.write("\n".join(node_ids))
    gc.collect()
    rss0 = rss_bytes()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.clients",
        "--port",
        str(port),
        "--nodes-file",
        f.name,
        "--streams-per-connection",
        str(streams_per_connection),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("ADS client process exited before syncing (see its stderr above)")
        hello = json.loads(line)
        synced = hello["synced"]
        sync_s = time.monotonic() - started
        gc.collect()
        rss1 = rss_bytes()
        expected = {
            n: after[n].versions[ENDPOINT]
            for n in node_ids
            if before[n].versions[ENDPOINT] != after[n].versions[ENDPOINT]
        }
        t0 = time.time()
        cache.replace_all(after)
        waiting = dict(expected)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            for node in [n for n, v in waiting.items() if cache.node_status(n).type(ENDPOINT).acked_version == v]:
                del waiting[node]
        latencies = [cache.node_status(n).type(ENDPOINT).acked_at - t0 for n in expected if n not in waiting]
        lag = await loop_lag_during(rebuild) if rebuild is not None else None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop(0)
        Path(f.name).unlink(missing_ok=True)
    return PushResult(
        streams=synced,
        eds_streams=hello["eds_streams"],
        rds_streams=hello["rds_streams"],
        reconnects=hello["reconnects"],
        first_failure=hello["first_failure"],
        sync_s=sync_s,
        affected=len(expected),
        acked=len(latencies),
        p50_s=percentile(latencies, 50),
        p99_s=percentile(latencies, 99),
        max_s=max(latencies, default=float("nan")),
        rss_per_stream=(rss1 - rss0) / max(1, synced),
        loop_lag_s=lag[0] if lag else None,
        lag_build_s=lag[1] if lag else 0.0,
    )


async def loop_lag_during(build: Callable[[], object], tick: float = 0.005) -> tuple[float, float]:
    """(worst lateness of a ``tick``-second sleep, build seconds) while ``build`` runs in a worker thread
    as the service runs its builds (collector paused, survivors frozen)."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            worst = max(worst, time.perf_counter() - start - tick)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.1)
    worst = 0.0
    started = time.perf_counter()
    with collector_paused():
        await asyncio.to_thread(build)
    gc.freeze()
    took = time.perf_counter() - started
    done = True
    await task
    return worst, took
