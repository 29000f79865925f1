"""Where the server's memory per connected ADS stream goes: ``python -m bench.memory --streams N``.

The server (``AdsServer``) runs in this process with the benchmark mesh's snapshots (every proxy
reaching every service, so each first sync pushes the full-size responses), or with tiny ones
(``--tiny``: a two-service mesh's configuration under every node id, to see the cost of a connection
without the sync traffic). The clients run in a separate process (``bench.clients``), as in
``bench.push``. Growth is measured from after the server started (``gc.collect()``) to after every
stream synced, and split into:

- Python objects: what ``tracemalloc`` traces in the whole process (``--trace``; its own overhead left
  out), with the top allocation sites, and the CPython object types that grew (``gc``);
- small-object arenas of CPython's allocator (pymalloc, 1 MiB each: in use vs free);
- glibc malloc (``mallinfo2``, all arenas): in use (gRPC C-core, and Python objects over 512 bytes)
  vs free but resident inside the arenas;
- the rest of RSS (thread stacks, pages of libraries, untracked mappings).

``--trim`` trims once before the clients start (so the build's garbage is not credited to it) and
once after the sync, and shows RSS again; ``--trimmer S`` runs ``control.heap.Trimmer`` during the
sync as the service would; ``--pushes K`` alternates K snapshot changes after the sync, each ACKed
(memory that grows per message shows here). gRPC channel arguments for the server go in with
``--grpc-option NAME=VALUE`` (repeatable). Run it with ``MALLOC_ARENA_MAX=2`` in the environment to
compare arena settings; each configuration is one process, since the allocator's state is per process.
Splitting per connection from per stream: run ``--streams-per-connection 1`` and ``10`` and solve
``c + s`` and ``c / 10 + s``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import sys
import tempfile
import time
import tracemalloc
import types
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import mesh
from bench.build import Builder, build
from bench.push import ads_clients, rss_bytes
from meshxds.control.heap import MallocInfo, Trimmer, malloc_info, malloc_trim
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Snapshot
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import AdsServer, Limits

KB = 1024


@dataclass(frozen=True)
class PyMalloc:
    """CPython's small-object allocator (``sys._debugmallocstats``): its arenas are mmapped, not malloc'd."""

    arenas: int  # bytes of arenas currently allocated (1 MiB each)
    allocated: int  # bytes in allocated blocks


def pymalloc() -> PyMalloc:
    """Parse ``sys._debugmallocstats()``, which writes to the C-level stderr."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")

    def number(label: str) -> int:
        found = re.search(rf"# {label}\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) if found else 0

    return PyMalloc(number("arenas allocated current") << 20, number("bytes in allocated blocks"))


@dataclass(frozen=True)
class Point:
    """One moment's figures, bytes."""

    rss: int
    pymalloc: PyMalloc
    malloc: MallocInfo
    traced: int  # tracemalloc: traced Python allocations (0 without --trace)
    tracer: int  # tracemalloc's own memory (malloc'd: left out of the malloc figures)


def start(trace: int) -> tuple[Point, tracemalloc.Snapshot | None]:
    """The figures before the clients connect; with ``trace`` frames, tracing starts here. CPython
    reports no pymalloc statistics while tracemalloc is on, so they are read before it starts."""
    gc.collect()
    small, info, rss = pymalloc(), malloc_info() or MallocInfo(0, 0, 0, 0), rss_bytes()
    if not trace:
        return Point(rss, small, info, 0, 0), None
    tracemalloc.start(trace)
    return Point(rss, small, info, *_traced()), tracemalloc.take_snapshot()


def finish(first: tracemalloc.Snapshot | None, top: int) -> tuple[Point, list[tuple[str, int, int]]]:
    """The figures now, and the allocation sites that grew since ``first``; tracing stops here. RSS and
    malloc are read before tracemalloc's snapshot is taken (it is itself made of Python objects), the
    pymalloc statistics after tracing stopped and the snapshots were dropped."""
    gc.collect()
    info, rss = malloc_info() or MallocInfo(0, 0, 0, 0), rss_bytes()
    traced, tracer = _traced()
    sites = top_sites(first, tracemalloc.take_snapshot(), top) if first is not None else []
    del first
    tracemalloc.stop()
    gc.collect()
    return Point(rss, pymalloc(), info, traced, tracer), sites


def _traced() -> tuple[int, int]:
    """(traced bytes, tracemalloc's own bytes), zeros when not tracing."""
    if not tracemalloc.is_tracing():
        return 0, 0
    return tracemalloc.get_traced_memory()[0], tracemalloc.get_tracemalloc_memory()


@dataclass(frozen=True)
class TunedLimits(Limits):
    """The server's limits plus channel arguments under test."""

    extra: tuple[tuple[str, int | str], ...] = ()

    def grpc_options(self) -> list[tuple[str, Any]]:
        return [*super().grpc_options(), *self.extra]


def snapshots(services: int, streams: int, tiny: bool) -> tuple[dict[str, Snapshot], dict[str, Snapshot]]:
    """The benchmark mesh's snapshots for the first ``streams`` proxies and the same after one endpoint
    moved (``--pushes`` alternates them); or (``tiny``) a two-service mesh's first snapshot under each of
    those node ids, and a three-service one's."""
    if tiny:
        ids = [f"default.{mesh.dataplane_name(s, r)}" for s in range(services) for r in range(3)][:streams]
        return _tiny(ids, 2), _tiny(ids, 3)
    spec = mesh.MeshSpec(services=services)
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-") as tmp:
        catalog = mesh.load(mesh.write(spec, Path(tmp)))
        builder = Builder()
        before, _ = build(catalog, builder, served=True)
        after, _ = build(mesh.with_endpoint_change(spec, Path(tmp), catalog), builder, served=True)
    ids = sorted(before)[:streams]
    return {n: before[n] for n in ids}, {n: after[n] for n in ids}


def _tiny(ids: list[str], services: int) -> dict[str, Snapshot]:
    built, _ = build(mesh.build_catalog(mesh.MeshSpec(services=services, dataplanes_per_service=1)))
    one = built[min(built)]
    return {n: Snapshot(n, one.resources, one.versions) for n in ids}


async def push(cache: SnapshotCache, snaps: dict[str, Snapshot], timeout: float) -> None:
    """Hand ``snaps`` to the cache and wait until every stream ACKed the change: its clusters if they
    changed (tiny snapshots), else its endpoints (the bench mesh's one moved endpoint)."""
    waiting: dict[str, tuple[str, str]] = {}
    for n, s in snaps.items():
        held = cache.get(n)
        kind = CLUSTER if held is None or held.versions[CLUSTER] != s.versions[CLUSTER] else ENDPOINT
        if held is None or held.versions[kind] != s.versions[kind]:
            waiting[n] = (kind, s.versions[kind])
    cache.replace_all(snaps)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        waiting = {n: (t, v) for n, (t, v) in waiting.items() if cache.node_status(n).type(t).acked_version != v}
    if waiting:
        raise RuntimeError(f"{len(waiting)} streams did not ACK a push within {timeout:g} s")


def option(text: str) -> tuple[str, int | str]:
    name, _, value = text.partition("=")
    return name, int(value) if value.lstrip("-").isdigit() else value


async def serve(args: argparse.Namespace, snaps: dict[str, Snapshot], other: dict[str, Snapshot]) -> dict[str, Any]:
    """Serve ``snaps``, connect the clients, measure before and after they synced (and ``args.pushes``)."""
    cache = SnapshotCache()
    cache.replace_all(snaps)
    server = AdsServer(cache, limits=TunedLimits(extra=tuple(option(o) for o in args.grpc_option)))
    port = await server.start("127.0.0.1", 0)
    if args.trim:
        malloc_trim()  # the build's garbage goes first, so the trim below is not credited with it
    types_before = type_counts()
    before, trace0 = start(args.trace)
    started = time.monotonic()
    out: dict[str, Any] = {}
    trimmer = Trimmer(every=args.trimmer) if args.trimmer else None
    ticking = asyncio.create_task(tick(trimmer)) if trimmer is not None else None
    try:
        per_connection = ("--streams-per-connection", str(args.streams_per_connection))
        async with ads_clients(port, list(snaps), *per_connection, timeout=args.timeout) as hello:
            out["sync_s"] = time.monotonic() - started
            out.update({k: hello[k] for k in ("synced", "reconnects", "first_failure")})
            pushed = time.monotonic()
            for k in range(args.pushes):
                await push(cache, other if k % 2 == 0 else snaps, args.timeout)
            out["push_s"] = time.monotonic() - pushed
            await asyncio.sleep(args.settle)  # let the last writes drain out of gRPC's buffers
            if ticking is not None and trimmer is not None:
                ticking.cancel()
                out["trimmer"] = {"trims": trimmer.trims, "released": trimmer.released, "seconds": trimmer.seconds}
            after, out["sites"] = finish(trace0, args.top)
            del trace0
            out["tasks"] = len(asyncio.all_tasks())
            out["types"] = grown_types(types_before, type_counts())
            out["parts"] = parts(before, after)
            if args.trim:
                out["trim_s"] = malloc_trim()
                out["parts_after_trim"] = parts(before, finish(None, 0)[0])
    finally:
        if ticking is not None:
            ticking.cancel()
        await server.stop(0)
    return out


async def tick(trimmer: Trimmer) -> None:
    """As the service would run it: a look every second."""
    while True:
        await asyncio.sleep(1.0)
        await trimmer.tick()


def parts(before: Point, after: Point) -> dict[str, int]:
    """Growth in bytes, split; ``rest`` = RSS growth not in the pymalloc arenas or the malloc arenas."""
    tracing = after.tracer > 0  # else ``after`` was measured with tracing stopped
    tracer = after.tracer - before.tracer if tracing else 0
    traced = after.traced - before.traced if tracing else 0
    small = after.pymalloc.allocated - before.pymalloc.allocated
    malloc_in_use = after.malloc.in_use + after.malloc.mmapped - before.malloc.in_use - before.malloc.mmapped - tracer
    out = {
        "rss": after.rss - before.rss,
        "python_traced": traced,
        "pymalloc_arenas": after.pymalloc.arenas - before.pymalloc.arenas,
        "pymalloc_in_use": small,
        "malloc_in_use": malloc_in_use,
        "malloc_free": after.malloc.free - before.malloc.free,
        "tracemalloc_overhead": tracer,
    }
    if traced:
        # Python allocations over 512 bytes go to malloc: the rest of malloc's in-use growth is C (gRPC core).
        out["malloc_python"] = traced - small
        out["malloc_c"] = malloc_in_use - (traced - small)
    resident = out["pymalloc_arenas"] + malloc_in_use + out["malloc_free"] + tracer
    out["rest"] = out["rss"] - resident
    return out


def type_counts() -> Counter[str]:
    """Live gc-tracked objects by type; coroutines and async generators by their function's name."""
    return Counter(_kind(o) for o in gc.get_objects())


def _kind(obj: object) -> str:
    if isinstance(obj, types.CoroutineType):
        return f"coroutine {obj.cr_code.co_qualname}"
    if isinstance(obj, types.AsyncGeneratorType):
        return f"async generator {obj.ag_code.co_qualname}"
    return type(obj).__qualname__


def grown_types(before: Counter[str], after: Counter[str], top: int = 30) -> list[tuple[str, int]]:
    grown = after.copy()
    grown.subtract(before)
    return [(name, n) for name, n in grown.most_common(top) if n > 0]


def top_sites(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> list[tuple[str, int, int]]:
    """(site, bytes grown, blocks grown) of the allocation sites that grew most; paths relative to the
    interpreter's prefix or the checkout, so the output shows no machine paths."""
    stats = after.compare_to(before, "traceback")
    rows = []
    for stat in sorted(stats, key=lambda s: -s.size_diff)[:top]:
        where = " < ".join(f"{_short(fr.filename)}:{fr.lineno}" for fr in stat.traceback)
        rows.append((where, stat.size_diff, stat.count_diff))
    return rows


def _short(filename: str) -> str:
    for root in (str(Path(__file__).resolve().parents[1]), sys.prefix, sys.base_prefix):
        if filename.startswith(root):
            return filename[len(root) :].lstrip(os.sep)
    return filename


def report(args: argparse.Namespace, out: dict[str, Any]) -> str:
    n = max(1, out["synced"])
    env = os.environ.get("MALLOC_ARENA_MAX", "default")
    lines = [
        f"streams {out['synced']} ({args.streams_per_connection} per connection), "
        f"{'tiny snapshots' if args.tiny else f'{args.services} services all-to-all'}, MALLOC_ARENA_MAX {env}, "
        f"options {args.grpc_option or 'none'}; sync {out['sync_s']:.1f} s, {args.pushes} pushes "
        f"{out['push_s']:.1f} s, {out['reconnects']} reconnects, "
        f"{out['tasks']} tasks" + (f"; first failure: {out['first_failure']}" if out["reconnects"] else ""),
        "KB per stream:",
    ]
    lines += [f"  {k:22} {v / n / KB:8.1f}" for k, v in out["parts"].items()]
    if "trimmer" in out:
        t = out["trimmer"]
        lines.append(
            f"Trimmer: {t['trims']} trims, {t['seconds'] * 1000:.0f} ms in all, {t['released'] / 1e6:.0f} MB given back"
        )
    if args.trim:
        lines.append(f"after malloc_trim(0) ({out['trim_s'] * 1000:.0f} ms): KB per stream")
        lines += [f"  {k:22} {v / n / KB:8.1f}" for k, v in out["parts_after_trim"].items()]
    lines.append("objects per stream (gc-tracked types that grew):")
    lines += [f"  {name:40} {count / n:6.1f}" for name, count in out["types"]]
    if out["sites"]:
        lines.append("top allocation sites (tracemalloc), bytes per stream, blocks per stream:")
        lines += [f"  {size / n:9.0f} B {count / n:6.1f}  {where}" for where, size, count in out["sites"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--streams", type=int, default=300)
    p.add_argument("--services", type=int, default=1000, help="mesh size (all-to-all); needs 3 x services >= streams")
    p.add_argument("--streams-per-connection", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="a two-service configuration under every node id")
    p.add_argument("--pushes", type=int, default=0, help="after the sync, this many EDS changes, each ACKed")
    p.add_argument("--trim", action="store_true", help="malloc_trim(0) after the sync, then RSS again")
    p.add_argument(
        "--trimmer",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run control.heap.Trimmer (looks every SECONDS) from the start of the sync, as the service would",
    )
    p.add_argument("--trace", type=int, default=0, metavar="FRAMES", help="tracemalloc with this many frames")
    p.add_argument("--top", type=int, default=15, help="allocation sites to show with --trace")
    p.add_argument("--grpc-option", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait after the sync before measuring")
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.streams > 3 * args.services:
        p.error(f"--streams {args.streams} needs --services >= {(args.streams + 2) // 3}")
    snaps, other = snapshots(args.services, args.streams, args.tiny)
    logging.getLogger("meshxds").setLevel(logging.WARNING)  # no line per connected stream
    out = asyncio.run(serve(args, snaps, other))
    out["args"] = vars(args)
    out["arena_max"] = os.environ.get("MALLOC_ARENA_MAX", "")
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, default=str) if args.json else report(args, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
