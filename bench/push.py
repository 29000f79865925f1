"""Push-to-ACK latency over real ADS streams, and server memory per connected proxy.

The server (meshxds's own ``AdsServer``) runs in this process; the clients run in a separate one
(``bench.clients``) so they do not share the server's core. Latency is measured on the server:
from the moment the new snapshots are handed to the cache until the server has received each
affected node's ACK of the new EDS version.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshxds.control.heap import TRIM_EVERY, collector_paused, trim_after_bursts
from meshxds.control.reaper import Reaper
from meshxds.control.service import BUILD_SWITCH_INTERVAL, switch_interval
from meshxds.snapshots.snapshot import ENDPOINT, TYPE_ORDER, Snapshot
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
    sync_s: float  # every stream connected, holding a full configuration, every response ACKed
    affected: int  # streams whose EDS changed
    acked: int  # of those, how many ACKed the new version before the timeout
    p50_s: float
    p99_s: float
    max_s: float
    sent_p50_s: float  # from the push until the server built and wrote the new EDS response, p50...
    sent_p99_s: float  # ...and p99 (the rest of the latency is the client's read and the ACK's way back)
    rss_per_stream: float  # server RSS growth from connecting the streams, per stream
    loop_lag_s: float | None = None  # worst event-loop lag while a full build ran in a worker thread
    lag_build_s: float = 0.0  # that build's duration
    sync_cpu_s: float = 0.0  # the server process's CPU time during the sync...
    push_cpu_s: float = 0.0  # ...and from the push until every ACK
    client_sync_s: float = 0.0  # when the client process said every stream holds its configuration
    client_cpu_s: float = 0.0  # the client process's CPU time until then


async def run(
    before: Mapping[str, Snapshot],
    after: Mapping[str, Snapshot],
    node_ids: list[str],
    *,
    streams_per_connection: int = 1,
    timeout: float = 600.0,
    rebuild: Callable[[], object] | None = None,
    profile: str | None = None,
) -> PushResult:
    """Sync ``node_ids`` streams to ``before``, then push ``after``. With ``profile`` (a path prefix) the
    server side of the sync and of the push is profiled into ``<profile>.sync`` and ``<profile>.push``."""
    cache = SnapshotCache()
    cache.replace_all(before)
    server = AdsServer(cache)
    port = await server.start("127.0.0.1", 0)
    gc.collect()
    rss0 = rss_bytes()
    trimmer = asyncio.create_task(trimming())  # as the service's periodic loop runs it
    started = time.monotonic()
    cpu0 = time.process_time()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    args = ["--streams-per-connection", str(streams_per_connection)]
    args += ["--profile", f"{profile}.clients"] if profile else []
    try:
        async with ads_clients(port, node_ids, *args, timeout=timeout) as hello:
            synced = hello["synced"]
            hello_s = time.monotonic() - started
            # The clients say they hold everything; the sync ends when the server has every stream's ACK of its
            # latest CDS, EDS, LDS and RDS responses.
            while not all(all_acked(cache, n) for n in node_ids) and time.monotonic() - started < timeout:
                await asyncio.sleep(0.01)
            sync_s = time.monotonic() - started
            sync_cpu = time.process_time() - cpu0
            # Memory per connected stream in the steady state after the sync: once the service's trimmer has
            # had its periodic look (at most every TRIM_EVERY seconds), as a served process would be.
            await asyncio.sleep(TRIM_EVERY + 1.5)
            gc.collect()
            rss1 = rss_bytes()
            trimmer.cancel()
            expected = {
                n: after[n].versions[ENDPOINT]
                for n in node_ids
                if before[n].versions[ENDPOINT] != after[n].versions[ENDPOINT]
            }
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile}.sync")
                profiler = cProfile.Profile()
                profiler.enable()
            t0 = time.time()
            cpu1 = time.process_time()
            cache.replace_all(after)
            latencies, _ = await acks_of(cache, expected, t0, timeout)
            push_cpu = time.process_time() - cpu1
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile}.push")
            sends = [cache.node_status(n).type(ENDPOINT).sent_at - t0 for n in expected]
            lag = await loop_lag_during(rebuild) if rebuild is not None else None
    finally:
        trimmer.cancel()
        await server.stop(0)
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
        sent_p50_s=percentile(sends, 50),
        sent_p99_s=percentile(sends, 99),
        rss_per_stream=(rss1 - rss0) / max(1, synced),
        sync_cpu_s=sync_cpu,
        client_sync_s=hello_s,
        client_cpu_s=hello.get("cpu_s", 0.0),
        push_cpu_s=push_cpu,
        loop_lag_s=lag[0] if lag else None,
        lag_build_s=lag[1] if lag else 0.0,
    )


@contextlib.asynccontextmanager
async def client_process(module: str, *args: str, timeout: float = 600.0) -> AsyncIterator[dict[str, Any]]:
    """``python -m module args``: yields the JSON line it prints once it is ready; on
    leaving, its stdin is closed (its signal to stop) and it is awaited, or killed if it does not go."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{module} exited before it was ready (see its stderr above)")
        yield json.loads(line)
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def ads_clients(
    port: int, node_ids: list[str], *args: str, timeout: float = 600.0
) -> AsyncIterator[dict[str, Any]]:
    """``bench.clients`` playing one Envoy per node id against ``port`` (``args``: more of its options); yields
    its hello once every stream holds a full configuration."""
    with tempfile.TemporaryDirectory(prefix="meshxds-clients-") as tmp:
        nodes = Path(tmp) / "nodes"
        nodes.write_text("\n".join(node_ids))
        argv = ["--port", str(port), "--nodes-file", str(nodes), *args]
        async with client_process("bench.clients", *argv, timeout=timeout) as hello:
            yield hello


async def acks_of(
    cache: SnapshotCache, expected: dict[str, str], since: float, timeout: float
) -> tuple[list[float], float]:
    """Each node's ACK time of its expected EDS version minus ``since``; and the latest ACK time."""
    waiting = dict(expected)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        for node in [n for n, v in waiting.items() if cache.node_status(n).type(ENDPOINT).acked_version == v]:
            del waiting[node]
    times = [cache.node_status(n).type(ENDPOINT).acked_at for n in expected if n not in waiting]
    return [t - since for t in times], max(times, default=since)


def all_acked(cache: SnapshotCache, node_id: str) -> bool:
    """The node was sent CDS and LDS, and it answered the latest response of every type it was sent."""
    status = cache.node_status(node_id)
    sent = [status.type(t) for t in TYPE_ORDER]
    return bool(sent[0].sent_nonce and sent[2].sent_nonce) and all(t.answered_nonce == t.sent_nonce for t in sent)


async def trimming(every: float = 1.0) -> None:
    """``control.heap.trim_after_bursts`` once a second, as ``Service.watch`` calls it (until cancelled)."""
    while True:
        await asyncio.sleep(every)
        await trim_after_bursts()


async def loop_lag_during(build: Callable[[], object], tick: float = 0.005) -> tuple[float, float]:
    """(worst lateness of a ``tick``-second sleep, build seconds) while ``build`` runs in a worker thread
    as the service runs its builds (collector paused, GIL switch interval shortened, survivors frozen),
    and while its result is freed as the service frees a replaced build (``control.reaper``)."""
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
    with collector_paused(freeze=True), switch_interval(BUILD_SWITCH_INTERVAL):
        result = await asyncio.to_thread(build)
    took = time.perf_counter() - started
    reaper = Reaper()
    reaper.release(result)
    del result
    await reaper.drain()
    done = True
    await task
    return worst, took
