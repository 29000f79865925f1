"""The running control plane: the ADS server on the resource files, reloading them when they change.

The glue between the pipeline and the server: load → validate → translate → ``cache.replace_all``.
The watcher (``control.watcher``: OS notifications, polling as the fallback) says which paths
changed once the input held still for ``settle`` seconds; only those are read again
(``store.folder.FileCache``), and if the input changed while being read, it is read again, so a
half-written file is never served. The snapshots a reload replaces are freed in slices
(``control.reaper``), so dropping them does not stall the streams. Invalid input (a parse
error, an empty or missing folder) is reported with the same lines as ``meshxds validate`` and the
last good snapshots stay served; a change that would remove most proxies at once waits for
``control.guard``. The watcher runs supervised (``control.supervise``) and ``readiness()`` says what
/readyz reports. ``meshxds serve``, the demo and the tests all run this one class.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from meshxds.control.guard import RemovalGuard
from meshxds.control.heap import collector_paused, trim_after_bursts
from meshxds.control.logs import say, short
from meshxds.control.reaper import Reaper
from meshxds.control.reports import ProxyReports
from meshxds.control.supervise import Supervised
from meshxds.control.watcher import Changes, Fingerprint, InputWatcher
from meshxds.resources import Catalog, catalog_from_documents, with_connected
from meshxds.resources.dump import to_yaml
from meshxds.resources.health import HealthReport
from meshxds.resources.model import Dataplane, MeshMultiZoneService, MeshService
from meshxds.security.auth import DataplaneAuthenticator
from meshxds.security.cptls import ServerTLS, control_plane_tls
from meshxds.security.issuer import IdentityIssuer
from meshxds.security.state import StateDir
from meshxds.snapshots.builder import Builder, SnapshotError
from meshxds.snapshots.snapshot import Snapshot
from meshxds.store.folder import FileCache
from meshxds.translators.health import HdsSettings
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.debug import DebugServer
from meshxds.xds.hds import HdsServer
from meshxds.xds.metrics_sink import MetricsSink, TrafficStore, prometheus_text
from meshxds.xds.server import AdsServer

log = logging.getLogger("meshxds.serve")
PROBLEM_LINE = 1000  # characters of one error or warning line (a value quoted from the input can be huge)
MAX_LISTED = 10  # node ids named in a reload line; the rest are counted
TIMES_KEPT = 50  # reloads whose stage times ``Service.times`` keeps (the bench reads them)
# While a build runs in a worker thread, the loop's thread gets the GIL back this often at worst (CPython's
# default is 5 ms: every time the loop blocks on I/O and wakes up, it may wait that long again).
BUILD_SWITCH_INTERVAL = 0.001


@contextmanager
def switch_interval(seconds: float | None) -> Iterator[None]:
    """``sys.setswitchinterval(seconds)`` for what runs inside (None: unchanged)."""
    before = sys.getswitchinterval()
    if seconds is not None:
        sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@dataclass(frozen=True)
class ReloadTimes:
    """Wall-clock stamps of one reload's stages (``time.time()``; 0 where a stage did not happen)."""

    changed: frozenset[Path] | None  # the paths the watcher reported (None: everything was looked at)
    first_event: float  # the first change noticed
    settled: float  # the input found quiet (the watcher's stamp; else when the read started)
    read: float  # files read and parsed (only the changed ones)
    catalog: float  # Catalog assembled
    built: float  # snapshots built
    applied: float = 0.0  # in the cache: streams are woken
    files_parsed: int = 0
    started: float = 0.0  # the worker thread began reading


@dataclass(frozen=True)
class Built:
    """One reload's outcome, computed off the event loop."""

    catalog: Catalog | None
    snapshots: dict[str, Snapshot] | None
    seconds: float
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    times: ReloadTimes | None = None
    unchanged: bool = False  # the changed paths held nothing new: nothing to apply


class Service:
    """The ADS server, its debug endpoint and the input watcher, on one event loop."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        zone: str = "default",
        poll_interval: float = 0.2,
        settle: float = 0.03,
        guard: RemovalGuard | None = None,
        hds: HdsSettings | None = None,
        state_dir: str | Path | None = None,
        secure: bool = False,
        tls_hosts: Sequence[str] = (),
        watch: str | None = None,
    ) -> None:
        """``state_dir`` keeps mesh CAs and identities across restarts; ``secure`` serves ADS over TLS with the
        control plane's own CA and requires dataplane tokens (both need ``state_dir``). ``watch``: "auto"
        (notifications, else polling), "notify" or "poll" (default: ``$MESHXDS_WATCH``, else auto)."""
        self.paths = list(paths)
        self.zone = zone
        self.poll_interval = poll_interval
        self.cache = SnapshotCache()
        state = StateDir(state_dir) if state_dir is not None else None
        # Keeps the previous build (a reload redoes only what changed) and issues mesh identities before translating.
        self.builder = Builder(IdentityIssuer(state))
        self.tls: ServerTLS | None = None
        auth = None
        if secure:
            if state is None:
                raise ValueError("a secure server needs a state directory")
            self.tls = control_plane_tls(state, list(tls_hosts))
            auth = DataplaneAuthenticator(state, self.dataplane)
        self.files = FileCache(zone)  # keeps each file's documents: a reload parses only changed files
        self.traffic = TrafficStore()  # live per-cluster traffic from Envoy's stats sink (for `migrate plan`)
        self.ads = AdsServer(self.cache, [MetricsSink(self.traffic).handler()], auth=auth, tls=self.tls)
        self.debug = DebugServer(
            self.cache,
            self.meshservices_yaml,
            self.traffic.as_json,
            lambda: prometheus_text(self.traffic),
            readiness=self.readiness,
        )
        self.catalog: Catalog | None = None
        self.seen: Fingerprint | None = None
        # What sidecars report (HDS health on the ADS port, node metadata): inputs of the next load.
        self.reports = ProxyReports(hds)
        self.hds = HdsServer(self.hds_specifier, self.on_health, self.reports.settings.refresh_interval.total_seconds())
        self.ads.handlers.append(self.hds.handler())
        self.ads.on_node = self.reports.report_node
        self._dataplanes: dict[str, Dataplane] = {}
        self.reloads = 0
        self.failed_reloads = 0
        self.input = InputWatcher(self.paths, poll_interval, settle, mode=watch)
        self.times: deque[ReloadTimes] = deque(maxlen=TIMES_KEPT)  # stage stamps of the latest reloads
        # The snapshots handed to the cache last time: kept so the reaper, not the cache, drops them.
        self._served: dict[str, Snapshot] = {}
        self.reaper = Reaper()
        self.build_switch_interval: float | None = BUILD_SWITCH_INTERVAL
        self.guard = guard or RemovalGuard()
        self.watcher = Supervised("input watcher", self.watch)
        self.last_error: str | None = None
        self._warnings: frozenset[str] = frozenset()
        self._reloading = asyncio.Lock()

    # -- loading ---------------------------------------------------------------------------------
    def build(
        self,
        previous: Catalog | None,
        connected: frozenset[str],
        health: Mapping[str, HealthReport] | None = None,
        dns_ports: Mapping[str, int] | None = None,
        changes: Changes | None = None,
        files_only: bool = False,
    ) -> Built:
        """Load, validate and translate (blocking: runs in a worker thread). Reports nothing itself.

        ``changes``: the paths the watcher saw change (None: look at every file). ``files_only``: the
        reload is for those changes alone, so when they held nothing new there is nothing to build.
        """
        start = time.perf_counter()
        started = time.time()
        settled = changes.settled_at if changes is not None and changes.settled_at else started
        changed = changes.paths if changes is not None else None
        reads = self.files.reads
        docs = self.files.load(self.paths, changed)  # only what changed since the last load is parsed again
        read = time.time()
        first = changes.first_at if changes is not None else 0.0
        stamps = ReloadTimes(changed, first, settled, read, 0.0, 0.0, 0.0, self.files.reads - reads, started)
        if files_only and previous is not None and not self.files.changed and not self.files.unstable:
            return Built(None, None, time.perf_counter() - start, times=stamps, unchanged=True)
        result = catalog_from_documents(docs, self.zone, previous, connected, health=health, dns_ports=dns_ports)
        stamps = replace(stamps, catalog=time.time())
        errors = tuple(str(p) for p in result.errors)
        warnings = tuple(str(p) for p in result.warnings)
        if result.catalog is None:
            return Built(None, None, time.perf_counter() - start, errors, warnings, stamps)
        try:
            snapshots = self.builder.build(result.catalog)
        except SnapshotError as exc:
            return Built(None, None, time.perf_counter() - start, (str(exc),), warnings, stamps)
        stamps = replace(stamps, built=time.time())
        return Built(result.catalog, snapshots, time.perf_counter() - start, errors, warnings, stamps)

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
        if built.unchanged:
            return True
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
        old = (self.catalog, self._dataplanes, self._served)  # freed by the reaper, in slices, not here
        self.catalog = built.catalog
        self._dataplanes = {dp.node_id: dp for view in built.catalog.meshes.values() for dp in view.dataplanes}
        self.reports.forget_others(set(self._dataplanes))
        changed = self.cache.replace_all(built.snapshots)
        self._served = dict(built.snapshots)
        if built.times is not None:
            self.times.append(replace(built.times, applied=time.time()))
        self.reaper.release(*old)
        del old
        self.reloads += 1
        listed = ", ".join(changed[:MAX_LISTED]) or "nothing"
        more = f" and {len(changed) - MAX_LISTED} more" if len(changed) > MAX_LISTED else ""
        log.info("loaded %d nodes in %.0f ms; changed: %s%s", len(built.snapshots), built.seconds * 1000, listed, more)
        return True

    async def reload(self, changes: Changes | None = None, files_only: bool = False) -> bool:
        """Read what changed (``changes``; None: look at every file) and apply it; a change during the read
        means reading again once the input is quiet. ``files_only``: nothing else asked for this reload."""
        async with self._reloading:
            health, dns_ports = self.reports.take()
            # The served state is millions of long-lived objects: the build runs without the cyclic GC, what
            # survives it is frozen (control.heap), and it hands the GIL back often.
            with collector_paused(freeze=True), switch_interval(self.build_switch_interval):
                while True:
                    built = await asyncio.to_thread(
                        self.build, self.catalog, self.cache.connected(), health, dns_ports, changes, files_only
                    )
                    await self.input.flush()
                    if not self.input.pending and not self.files.unstable:
                        break
                    await self.input.settled()  # changed while read: wait until quiet, read it all again
                    more = self.input.take() or Changes(frozenset())
                    unstable = Changes(self.files.unstable | self.files.changed)
                    changes = more.union(unstable) if changes is None else changes.union(more).union(unstable)
                    files_only = False  # the first read's changes are part of this one: build it
                self.seen = self.files.fingerprint()
                return self.apply(built, self.seen)

    def dataplane(self, node_id: str) -> Dataplane | None:
        """The Dataplane a token is checked against (None until the node is in the input)."""
        return self.catalog.dataplane(node_id) if self.catalog is not None else None

    def rotation_due(self) -> bool:
        """An identity passed 4/5 of its lifetime: rebuild, so new secrets go out (streams stay open)."""
        due = self.builder.credentials.next_rotation()
        return due is not None and datetime.datetime.now(datetime.UTC) >= due

    async def watch(self) -> None:
        restarted = self.input.backend == ""  # a dead backend: events were lost, look at everything once
        await self.input.start()
        if restarted and self.seen is not None:
            await self.reload()
        while True:
            changes = await self.input.wait(self.poll_interval)
            self.ads.recheck_tokens()
            await trim_after_bursts()  # give the pages of a burst (a sync, a reload) back to the kernel
            if changes is not None:
                await self.reload(changes, files_only=True)
            elif self.guard.due(time.monotonic()) or self.reports.dirty or self.rotation_due():
                await self.reload(Changes(frozenset()))  # a held removal or a rotation is due, or a sidecar reported

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

    # -- what sidecars report -------------------------------------------------------------------
    def hds_specifier(self, node_id: str) -> bytes | None:
        """The node's encoded HealthCheckSpecifier (None: no such Dataplane), for the HDS server."""
        return self.reports.specifier(self._dataplanes.get(node_id))

    def on_health(self, node_id: str, report: HealthReport) -> None:
        if node_id in self._dataplanes:  # a removed node's sidecar may still report: nothing to change
            self.reports.report_health(node_id, report)

    async def meshservices_yaml(self) -> str:
        """The MeshServices with live ``connected`` counts, rendered off the loop (large meshes take seconds)."""
        if self.catalog is None:
            return ""
        return await asyncio.to_thread(render_meshservices, self.catalog, self.cache.connected())

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, address: str = "127.0.0.1", port: int = 18000, debug_port: int | None = None) -> None:
        await self.input.start()  # before the first read: a change during it is then noticed
        await self.reload()
        await self.ads.start(address, port)
        if debug_port is not None:
            await self.debug.start(address, debug_port)
        self.watcher.start()

    async def stop(self, grace: float = 0.2) -> None:
        """Stop watching, then end every stream with UNAVAILABLE and close within ``grace`` seconds."""
        await self.watcher.stop()
        await self.input.stop()
        await self.debug.stop()
        await self.ads.stop(grace)
        await self.reaper.stop()


def render_meshservices(catalog: Catalog, connected: frozenset[str]) -> str:
    catalog = with_connected(catalog, connected)
    services: list[MeshService | MeshMultiZoneService] = []
    for view in catalog.meshes.values():
        services += view.mesh_services
        services += view.multizone_services
    return to_yaml(services)
