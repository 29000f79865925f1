"""The running control plane: the ADS server on the resource files, reloading them when they change.

The glue between the pipeline and the server: load → validate → translate → ``cache.replace_all``.
Input is polled (mtime, size and inode of every file under the paths); a change is loaded in a
worker thread so streams keep being served meanwhile. Invalid input is reported with the same
lines as ``meshxds validate`` and the last good snapshots stay served. ``meshxds serve``, the demo
and the tests all run this one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshxds.codec.wire import WireError
from meshxds.control.report import report
from meshxds.control.reports import ProxyReports
from meshxds.resources import Catalog, load_catalog, with_connected
from meshxds.resources.dump import to_yaml
from meshxds.resources.health import HealthReport
from meshxds.resources.model import Dataplane, MeshMultiZoneService, MeshService
from meshxds.security.auth import DataplaneAuthenticator
from meshxds.security.cptls import ServerTLS, control_plane_tls
from meshxds.security.issuer import IdentityIssuer
from meshxds.security.state import StateDir
from meshxds.snapshots.builder import Builder, SnapshotError
from meshxds.snapshots.snapshot import Snapshot
from meshxds.translators.health import HdsSettings
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.debug import DebugServer
from meshxds.xds.hds import HdsServer
from meshxds.xds.metrics_sink import MetricsSink, TrafficStore, prometheus_text
from meshxds.xds.nodemeta import dns_port
from meshxds.xds.server import AdsServer

log = logging.getLogger("meshxds.serve")

Fingerprint = tuple[tuple[str, int, int, int], ...]
SETTLE_SECONDS = 0.02  # a change is read once the files stayed the same this long...
SETTLE_CHECKS = 25  # ...or after this many checks (0.5 s) of continuous writing


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """What changes when any input file is written, added, removed or renamed."""
    out: list[tuple[str, int, int, int]] = []
    for root in paths:
        files = [Path(root)] if not Path(root).is_dir() else sorted(Path(root).rglob("*"))
        for f in files:
            try:
                st = f.stat()
            except OSError:
                out.append((str(f), -1, -1, -1))
                continue
            if f.is_file():
                out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


@dataclass(frozen=True)
class Built:
    """One reload's outcome, computed off the event loop."""

    catalog: Catalog | None
    snapshots: dict[str, Snapshot] | None
    seconds: float


class Service:
    """The ADS server, its debug endpoint and the input watcher, on one event loop."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        zone: str = "default",
        poll_interval: float = 0.2,
        hds: HdsSettings | None = None,
        state_dir: str | Path | None = None,
        secure: bool = False,
        tls_hosts: Sequence[str] = (),
    ) -> None:
        """``state_dir`` keeps mesh CAs and identities across restarts; ``secure`` serves ADS over TLS with the
        control plane's own CA and requires dataplane tokens (both need ``state_dir``)."""
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
        self.traffic = TrafficStore()  # live per-cluster traffic from Envoy's stats sink (for `migrate plan`)
        self.ads = AdsServer(self.cache, [MetricsSink(self.traffic).handler()], auth, self.tls)
        self.debug = DebugServer(
            self.cache, self.meshservices_yaml, self.traffic.as_json, lambda: prometheus_text(self.traffic)
        )
        self.catalog: Catalog | None = None
        self.seen: Fingerprint | None = None
        # What sidecars report (HDS health on the ADS port, node metadata): inputs of the next load.
        self.reports = ProxyReports(hds)
        self.hds = HdsServer(self.hds_specifier, self.on_health, self.reports.settings.refresh_interval.total_seconds())
        self.ads.handlers.append(self.hds.handler())
        self.ads.on_node = self.on_node
        self._dataplanes: dict[str, Dataplane] = {}
        self.reloads = 0
        self.failed_reloads = 0
        self._watcher: asyncio.Task[None] | None = None

    # -- loading ---------------------------------------------------------------------------------
    def build(
        self,
        previous: Catalog | None,
        connected: frozenset[str],
        health: Mapping[str, HealthReport] | None = None,
        dns_ports: Mapping[str, int] | None = None,
    ) -> Built:
        """Load, validate and translate; reports problems on stderr. Pure apart from printing."""
        start = time.perf_counter()
        result = load_catalog(
            self.paths, zone=self.zone, previous=previous, connected=connected, health=health, dns_ports=dns_ports
        )
        report(result)
        if result.catalog is None:
            return Built(None, None, time.perf_counter() - start)
        try:
            snapshots = self.builder.build(result.catalog)
        except SnapshotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return Built(None, None, time.perf_counter() - start)
        return Built(result.catalog, snapshots, time.perf_counter() - start)

    def apply(self, built: Built) -> bool:
        """Swap in a successful build (on the loop); keep the last good snapshots otherwise."""
        if built.catalog is None or built.snapshots is None:
            self.failed_reloads += 1
            if self.catalog is None:
                message = "serving nothing until it is fixed (watching)"
            else:
                message = f"still serving the last good snapshots ({len(self.cache.nodes())} nodes)"
            print(f"meshxds: input has errors; {message}", file=sys.stderr)
            return False
        self.catalog = built.catalog
        self._dataplanes = {dp.node_id: dp for view in built.catalog.meshes.values() for dp in view.dataplanes}
        self.reports.forget_others(set(self._dataplanes))
        changed = self.cache.replace_all(built.snapshots)
        self.reloads += 1
        log.info(
            "loaded %d nodes in %.0f ms; changed: %s",
            len(built.snapshots),
            built.seconds * 1000,
            ", ".join(changed) or "nothing",
        )
        return True

    async def reload(self) -> bool:
        self.seen = fingerprint(self.paths)
        health, dns_ports = self.reports.take()
        built = await asyncio.to_thread(self.build, self.catalog, self.cache.connected(), health, dns_ports)
        return self.apply(built)

    def dataplane(self, node_id: str) -> Dataplane | None:
        """The Dataplane a token is checked against (None until the node is in the input)."""
        return self.catalog.dataplane(node_id) if self.catalog is not None else None

    def rotation_due(self) -> bool:
        """An identity passed 4/5 of its lifetime: rebuild, so new secrets go out (streams stay open)."""
        due = self.builder.credentials.next_rotation()
        return due is not None and datetime.datetime.now(datetime.UTC) >= due

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            self.ads.recheck_tokens()
            current = fingerprint(self.paths)
            if current == self.seen:
                # a sidecar reported (the same path as a file change, minus the settling), or an identity is due
                if self.reports.dirty or self.rotation_due():
                    await self.reload()
                continue
            # Let a burst of writes (an editor's save, a `cp -r`) finish before reading the files.
            for _ in range(SETTLE_CHECKS):
                await asyncio.sleep(SETTLE_SECONDS)
                latest = fingerprint(self.paths)
                if latest == current:
                    break
                current = latest
            await self.reload()

    # -- what sidecars report -------------------------------------------------------------------
    def hds_specifier(self, node_id: str) -> bytes | None:
        """The node's encoded HealthCheckSpecifier (None: no such Dataplane), for the HDS server."""
        return self.reports.specifier(self._dataplanes.get(node_id))

    def on_health(self, node_id: str, report: HealthReport) -> None:
        if node_id in self._dataplanes:  # a removed node's sidecar may still report: nothing to change
            self.reports.report_health(node_id, report)

    def on_node(self, node_id: str, node: bytes) -> None:
        """An accepted ADS stream's Node: its metadata may ask for a DNS listener."""
        try:
            port = dns_port(node)
        except WireError as exc:
            log.warning("%s: unreadable node metadata: %s", node_id, exc)
            return
        self.reports.report_dns_port(node_id, port)

    def meshservices_yaml(self) -> str:
        if self.catalog is None:
            return ""
        catalog = with_connected(self.catalog, self.cache.connected())
        services: list[MeshService | MeshMultiZoneService] = []
        for view in catalog.meshes.values():
            services += view.mesh_services
            services += view.multizone_services
        return to_yaml(services)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, address: str = "127.0.0.1", port: int = 18000, debug_port: int | None = None) -> None:
        await self.reload()
        await self.ads.start(address, port)
        if debug_port is not None:
            await self.debug.start(address, debug_port)
        self._watcher = asyncio.create_task(self.watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.debug.stop()
        await self.ads.stop(0.2)
