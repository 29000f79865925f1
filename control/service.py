"""The running control plane: the ADS server on the resource files, reloading them when they change.

The glue between the pipeline and the server: load → validate → translate → ``cache.replace_all``.
Input is polled off the loop (``control.watcher``) and read once it held still for ``settle``
seconds; if it changed while being read, it is read again, so a half-written file is never served.
Invalid input (a parse error, an empty or missing folder) is reported with the same lines as
``meshxds validate`` and the last good snapshots stay served; a change that would remove most
proxies at once waits for ``control.guard``. The watcher runs supervised (``control.supervise``)
and ``readiness()`` says what /readyz reports. ``meshxds serve``, the demo and the tests all run
this one class.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshxds.control.guard import RemovalGuard
from meshxds.control.logs import say, short
from meshxds.control.supervise import Supervised
from meshxds.control.watcher import Fingerprint, InputWatcher, fingerprint
from meshxds.resources import Catalog, load_catalog, with_connected
from meshxds.resources.dump import to_yaml
from meshxds.resources.model import MeshMultiZoneService, MeshService
from meshxds.snapshots.builder import Builder, SnapshotError
from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.debug import DebugServer
from meshxds.xds.server import AdsServer

log = logging.getLogger("meshxds.serve")
PROBLEM_LINE = 1000  # characters of one error or warning line (a value quoted from the input can be huge)
MAX_LISTED = 10  # node ids named in a reload line; the rest are counted


@dataclass(frozen=True)
class Built:
    """One reload's outcome, computed off the event loop."""

    catalog: Catalog | None
    snapshots: dict[str, Snapshot] | None
    seconds: float
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


class Service:
    """The ADS server, its debug endpoint and the input watcher, on one event loop."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        zone: str = "default",
        poll_interval: float = 0.2,
        settle: float = 0.25,
        guard: RemovalGuard | None = None,
    ) -> None:
        self.paths = list(paths)
        self.zone = zone
        self.poll_interval = poll_interval
        self.cache = SnapshotCache()
        self.builder = Builder()  # keeps the previous build: a reload redoes only what changed
        self.ads = AdsServer(self.cache)
        self.debug = DebugServer(self.cache, self.meshservices_yaml, self.readiness)
        self.catalog: Catalog | None = None
        self.seen: Fingerprint | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self.input = InputWatcher(self.paths, poll_interval, settle)
        self.guard = guard or RemovalGuard()
        self.watcher = Supervised("input watcher", self.watch)
        self.last_error: str | None = None
        self._warnings: frozenset[str] = frozenset()
        self._reloading = asyncio.Lock()

    # -- loading ---------------------------------------------------------------------------------
    def build(self, previous: Catalog | None, connected: frozenset[str]) -> Built:
        """Load, validate and translate (blocking: runs in a worker thread). Reports nothing itself."""
        start = time.perf_counter()
        result = load_catalog(self.paths, zone=self.zone, previous=previous, connected=connected)
        errors = tuple(str(p) for p in result.errors)
        warnings = tuple(str(p) for p in result.warnings)
        if result.catalog is None:
            return Built(None, None, time.perf_counter() - start, errors, warnings)
        try:
            snapshots = self.builder.build(result.catalog)
        except SnapshotError as exc:
            return Built(None, None, time.perf_counter() - start, (str(exc),), warnings)
        return Built(result.catalog, snapshots, time.perf_counter() - start, errors, warnings)

    def report(self, built: Built) -> None:
        """Errors every time (they are why the reload failed); warnings only when they changed."""
        for line in built.errors:
            say("error", short(line, PROBLEM_LINE))
        warnings = frozenset(built.warnings)
        for line in built.warnings:
            if line not in self._warnings:
                say("warning", short(line, PROBLEM_LINE))
        if warnings and warnings <= self._warnings:
            log.info("%d warning(s), unchanged", len(warnings))
        self._warnings = warnings

    def apply(self, built: Built, key: Fingerprint | None = None) -> bool:
        """Swap in a successful build (on the loop); keep the last good snapshots otherwise."""
        self.report(built)
        if built.catalog is None or built.snapshots is None:
            self.failed_reloads += 1
            self.last_error = short(built.errors[0] if built.errors else "input has errors", 300)
            if self.catalog is None:
                message = "serving nothing until it is fixed (watching)"
            else:
                message = f"still serving the last good snapshots ({len(self.cache.nodes())} nodes)"
            say("meshxds", f"meshxds: input has errors; {message}")
            return False
        if self.catalog is not None and not self.guard.allows(
            set(self.cache.nodes()), set(built.snapshots), key, time.monotonic()
        ):
            return False
        self.last_error = None
        self.catalog = built.catalog
        changed = self.cache.replace_all(built.snapshots)
        self.reloads += 1
        # The served state is millions of long-lived objects: left to the cyclic GC, every full collection
        # (triggered by a reload's allocations, in whichever thread) walks them all with the GIL held and
        # stalls the loop for up to seconds. Frozen, they are skipped; they hold no reference cycles, so
        # what a later reload replaces is still freed by reference counting.
        gc.freeze()
        listed = ", ".join(changed[:MAX_LISTED]) or "nothing"
        more = f" and {len(changed) - MAX_LISTED} more" if len(changed) > MAX_LISTED else ""
        log.info("loaded %d nodes in %.0f ms; changed: %s%s", len(built.snapshots), built.seconds * 1000, listed, more)
        return True

    def _read(self, previous: Catalog | None, connected: frozenset[str]) -> tuple[Fingerprint, Built, Fingerprint]:
        """The input state before, the build, and the state after (different: files changed while read)."""
        before = fingerprint(self.paths)
        built = self.build(previous, connected)
        return before, built, fingerprint(self.paths)

    async def reload(self) -> bool:
        """Read the input once it holds still; a change during the read means reading it again."""
        async with self._reloading:
            while True:
                before, built, after = await asyncio.to_thread(self._read, self.catalog, self.cache.connected())
                if before == after:
                    break
                await self.input.settled(after)
            self.seen = before
            return self.apply(built, before)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            current = await self.input.fingerprint()
            if current != self.seen:
                await self.input.settled(current)  # let an editor's save or a copy finish first
                await self.reload()
            elif self.guard.due(time.monotonic()):
                await self.reload()

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for /readyz: 503 until a good snapshot is served or while the watcher is down."""
        reasons: list[str] = []
        if self.catalog is None:
            reasons.append("no good input loaded yet" + (f": {self.last_error}" if self.last_error else ""))
        if not self.watcher.healthy:
            reasons.append("input watcher is not running")
        body: dict[str, Any] = {
            "nodes": len(self.cache.nodes()),
            "reloads": self.reloads,
            "failed_reloads": self.failed_reloads,
            "watcher": self.watcher.state(),
        }
        if reasons:
            return 503, {"status": "not ready", "reasons": reasons, **body}
        degraded: list[str] = []
        if self.last_error:
            degraded.append(f"last reload failed, serving the last good snapshots: {self.last_error}")
        if self.guard.held is not None:
            degraded.append(self.guard.held.reason(self.guard.hold))
        if degraded:
            return 200, {"status": "degraded", "reasons": degraded, **body}
        return 200, {"status": "ready", **body}

    async def meshservices_yaml(self) -> str:
        """The MeshServices with live ``connected`` counts, rendered off the loop (large meshes take seconds)."""
        if self.catalog is None:
            return ""
        return await asyncio.to_thread(render_meshservices, self.catalog, self.cache.connected())

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, address: str = "127.0.0.1", port: int = 18000, debug_port: int | None = None) -> None:
        await self.reload()
        await self.ads.start(address, port)
        if debug_port is not None:
            await self.debug.start(address, debug_port)
        self.watcher.start()

    async def stop(self, grace: float = 0.2) -> None:
        """Stop watching, then end every stream with UNAVAILABLE and close within ``grace`` seconds."""
        await self.watcher.stop()
        await self.debug.stop()
        await self.ads.stop(grace)


def render_meshservices(catalog: Catalog, connected: frozenset[str]) -> str:
    catalog = with_connected(catalog, connected)
    services: list[MeshService | MeshMultiZoneService] = []
    for view in catalog.meshes.values():
        services += view.mesh_services
        services += view.multizone_services
    return to_yaml(services)
