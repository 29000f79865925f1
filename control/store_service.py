"""A control plane on a Store: every replica serves its Envoys; the leader allocates and remembers.

Changes arrive one resource at a time (an API write on this replica at once, any replica's write via
PostgreSQL NOTIFY, a RESYNC after a lost connection); the Mirror re-reads only what changed and a
single rebuild loop coalesces bursts, assembles the Catalog and feeds the incremental Builder.

Leader duties (Kuma: vip/allocator.go, meshservice/generate/generator.go, status/updater.go, all
``NeedLeaderElection() true``): the leader writes the Catalog's VIPs and generated MeshServices to the
store's state, and creates the default Mesh on first start. Followers build with the leader's state as
"previous", so they serve the same VIPs; until a brand-new service's state arrives they compute the
same deterministic allocation themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from meshxds.control.heap import collector_paused, trim_after_bursts
from meshxds.control.metrics import Metrics
from meshxds.control.reaper import Reaper
from meshxds.control.reports import ProxyReports
from meshxds.control.service import BUILD_SWITCH_INTERVAL, TIMES_KEPT, ReloadTimes, switch_interval
from meshxds.resources.catalog import Catalog
from meshxds.resources.generate import Grace, grace_started
from meshxds.resources.health import HealthReport
from meshxds.resources.model import Dataplane
from meshxds.snapshots.builder import Builder, SnapshotError
from meshxds.snapshots.dump import to_json_dict
from meshxds.store.leader import LeaderElector
from meshxds.store.listen import changes
from meshxds.store.mirror import Mirror
from meshxds.store.model import AlreadyExists, Change, Key, Record, Store
from meshxds.store.postgres import PostgresStore
from meshxds.store.state import STATE_NAME, previous_catalog, remembered
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.hds import HdsServer
from meshxds.xds.server import AdsServer

log = logging.getLogger("meshxds.control")
DEFAULTS_STATE = "defaults"


class StoreService:
    """ADS + Mirror + rebuild loop (+ NOTIFY listener and leader election on PostgreSQL)."""

    def __init__(
        self,
        store: Store,
        zone: str = "default",
        leader_interval: float = 1.0,
        grace_period: timedelta = timedelta(hours=1),
    ) -> None:
        self.store = store
        self.grace_period = grace_period  # Kuma's meshService.deletionGracePeriod
        self._grace_timer: asyncio.TimerHandle | None = None
        self.zone = zone
        self.cache = SnapshotCache()
        self.builder = Builder()
        self.ads = AdsServer(self.cache)
        self.mirror = Mirror(store, zone)
        self.metrics = Metrics(self.cache)
        self.current: Catalog | None = None
        self.previous: Catalog | None = None
        self.leader = not isinstance(store, PostgresStore)  # a lone process leads itself
        self.set_at: dict[str, float] = {}
        self.builds = 0
        self.failed_builds = 0
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._elector: LeaderElector | None = None
        self._remembered: dict[str, Any] | None = None
        # What sidecars report (HDS health on the ADS port, DNS port in node metadata), as in the folder service.
        self.reports = ProxyReports()
        self.hds = HdsServer(self.hds_specifier, self.on_health, self.reports.settings.refresh_interval.total_seconds())
        self.ads.handlers.append(self.hds.handler())
        self.ads.on_node = self.on_node
        self._dataplanes: dict[str, Dataplane] = {}
        # The snapshots handed to the cache last time: kept so the reaper, not the cache, drops them (as
        # the folder service does: freeing a whole build in one statement stalls every stream).
        self._served: dict[str, Any] = {}
        self.reaper = Reaper()
        # -- stage stamps of the latest rebuilds (as ``Service.times``; the bench reads them) --
        self.times: deque[ReloadTimes] = deque(maxlen=TIMES_KEPT)
        self._first_change = 0.0  # wall clock of the first change not yet in a rebuild
        self._stamps = ReloadTimes(None, 0.0, 0.0, 0.0, 0.0, 0.0)
        if isinstance(store, PostgresStore):
            store.observer = self.metrics.observe_store
            store.on_conflict = lambda kind: self.metrics.store_conflicts.labels(kind).inc()
            self._elector = LeaderElector(store.url, self.on_leader, interval=leader_interval)

    # -- View for the API ----------------------------------------------------------------------
    def catalog(self) -> Catalog | None:
        return self.current

    def config(self, node_id: str) -> dict[str, Any] | None:
        snap = self.cache.get(node_id)
        return to_json_dict(snap) if snap is not None else None

    # -- what sidecars report ------------------------------------------------------------------------
    def hds_specifier(self, node_id: str) -> bytes | None:
        return self.reports.specifier(self._dataplanes.get(node_id))

    def on_health(self, node_id: str, report: HealthReport) -> None:
        if node_id in self._dataplanes and self.reports.report_health(node_id, report):
            self._dirty.set()

    def on_node(self, node_id: str, node: bytes) -> None:
        if self.reports.report_node(node_id, node):
            self._dirty.set()

    # -- changes -----------------------------------------------------------------------------------
    async def on_write(self, change: Change) -> None:
        """A write this replica just made: apply it now rather than wait for the NOTIFY round trip."""
        await self.apply(change)

    async def apply(self, change: Change) -> None:
        self.metrics.changes.labels(change.action).inc()
        if change.action == "STATE":
            if change.key is not None and change.key.name == STATE_NAME and not self.leader:
                self.previous = self.taking_over(previous_catalog(await self.store.get_state(STATE_NAME), self.zone))
                self._dirty.set()
            return
        if await self.mirror.apply(change) or change.action == "RESYNC":
            self._first_change = self._first_change or time.time()  # stage stamps: when the change arrived
            self._dirty.set()

    async def listen(self, url: str) -> None:
        async for change in changes(url):
            try:
                await self.apply(change)
            except Exception as exc:  # a failed read: the next RESYNC or change repairs it
                log.warning("cannot apply %s: %s", change, exc)

    async def on_leader(self, leader: bool) -> None:
        self.leader = leader
        self.metrics.leader.set(1 if leader else 0)
        if leader:
            # Take over from the state the previous leader left, never from this replica's own guesses.
            self.previous = self.taking_over(previous_catalog(await self.store.get_state(STATE_NAME), self.zone))
            await self.ensure_defaults()
            self._remembered = None
            self._dirty.set()

    def taking_over(self, state: Catalog | None) -> Catalog | None:
        """The leader's VIP state, with this replica's last build's results for the next build to take over."""
        return replace(state, memo=self.current.memo) if state is not None and self.current is not None else state

    async def ensure_defaults(self) -> None:
        """Kuma's leader creates the default Mesh once (defaults/components.go); a deleted one stays deleted."""
        if await self.store.get_state(DEFAULTS_STATE) is not None:
            return
        with contextlib.suppress(AlreadyExists):
            if not await self.store.list("Mesh"):
                await self.store.create(Record(Key("Mesh", "", "default"), {}))
        await self.store.put_state(DEFAULTS_STATE, {"mesh": True})

    # -- rebuilding ----------------------------------------------------------------------------------
    def build(
        self, records: list[Record], reports: tuple[dict[str, HealthReport], dict[str, int]]
    ) -> tuple[Catalog | None, dict[str, Any] | None]:
        """Catalog and snapshots (runs in a worker thread; only the rebuild loop calls it)."""
        start = time.perf_counter()
        health, dns_ports = reports
        grace = Grace(datetime.now(UTC), self.grace_period)
        result = self.mirror.catalog(self.previous, self.cache.connected(), records, health, dns_ports, grace)
        self.metrics.catalog_build.observe(time.perf_counter() - start)
        self._stamps = replace(self._stamps, catalog=time.time())
        if result.catalog is None:
            for problem in result.errors[:20]:
                log.error("%s", problem)
            return None, None
        start = time.perf_counter()
        try:
            snapshots = self.builder.build(result.catalog)
        except SnapshotError as exc:
            log.error("%s", exc)
            return None, None
        self.metrics.generation.observe((time.perf_counter() - start) * 1000)
        self._stamps = replace(self._stamps, built=time.time())
        return result.catalog, dict(snapshots)

    async def rebuild(self) -> bool:
        # The Mirror's records may change on the loop while the worker reads them: hand it a copy.
        records = list(self.mirror.records.values())
        now = time.time()
        self._stamps = ReloadTimes(None, self._first_change, now, now, 0.0, 0.0)
        self._first_change = 0.0
        # As the folder service builds: without the cyclic GC (what survives is frozen), handing the GIL back
        # often, and the replaced build freed in slices by the reaper.
        with collector_paused(freeze=True), switch_interval(BUILD_SWITCH_INTERVAL):
            catalog, snapshots = await asyncio.to_thread(self.build, records, self.reports.take())
            if catalog is None or snapshots is None:
                self.failed_builds += 1
                self.metrics.generation_errors.inc()
                log.error("store content has errors; still serving the last good snapshots")
                return False
            old = (self.current, self._dataplanes, self._served)
            changed = self.cache.replace_all(snapshots)
            self._served = snapshots
            self.times.append(replace(self._stamps, applied=time.time()))
            stamp = time.time()
            for node in changed:
                self.set_at[node] = stamp
            self.current = catalog
            self.previous = catalog
            self._dataplanes = {dp.node_id: dp for view in catalog.meshes.values() for dp in view.dataplanes}
            self.reaper.release(*old)
            del old
        self.reports.forget_others(set(self._dataplanes))
        self.builds += 1
        log.info("built %d nodes; changed: %s", len(snapshots), ", ".join(changed) or "nothing")
        self.schedule_grace_end(catalog)
        if self.leader:
            state = await asyncio.to_thread(remembered, catalog)  # 1,000 services: tens of ms, off the loop
            if state != self._remembered:
                await self.store.put_state(STATE_NAME, state)
                self._remembered = state
        return True

    def schedule_grace_end(self, catalog: Catalog) -> None:
        """Rebuild when the first deletion grace period ends (Kuma's generator re-checks on its interval)."""
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        starts = [
            started
            for view in catalog.meshes.values()
            for ms in view.mesh_services
            if (started := grace_started(ms)) is not None
        ]
        if starts:
            ends = min(starts) + self.grace_period - datetime.now(UTC)
            delay = max(ends.total_seconds(), 0.0) + 0.05  # "more than the period", as generator.go compares
            self._grace_timer = asyncio.get_running_loop().call_later(delay, self._dirty.set)

    async def rebuild_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.rebuild()
            except Exception as exc:  # the store went away mid-build: keep serving, retry on the next change
                log.warning("rebuild failed: %s", exc)

    async def sample_loop(self, interval: float = 0.05) -> None:
        while True:
            await asyncio.sleep(interval)
            self.metrics.sample_delivery(self.cache, self.set_at.get)
            await trim_after_bursts()  # give the pages of a burst (a sync, a rebuild) back to the kernel

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, address: str = "127.0.0.1", port: int = 18000) -> None:
        self.metrics.leader.set(1 if self.leader else 0)
        if self._elector is not None:
            await self._elector.poll()  # the first replica leads (and creates the defaults) before it serves
        elif not self.store.read_only:
            await self.ensure_defaults()
        self.previous = previous_catalog(await self.store.get_state(STATE_NAME), self.zone)
        await self.mirror.apply(Change("RESYNC"))
        await self.rebuild()
        await self.ads.start(address, port)
        self._tasks.append(asyncio.create_task(self.rebuild_loop()))
        self._tasks.append(asyncio.create_task(self.sample_loop()))
        if isinstance(self.store, PostgresStore):
            self._tasks.append(asyncio.create_task(self.listen(self.store.url)))
        if self._elector is not None:
            self._elector.start()

    async def stop(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        if self._elector is not None:
            await self._elector.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.ads.stop(0.2)
        await self.reaper.stop()
        await self.store.close()
