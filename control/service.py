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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshxds.control.report import report
from meshxds.resources import Catalog, load_catalog, with_connected
from meshxds.resources.dump import to_yaml
from meshxds.resources.model import Dataplane, MeshMultiZoneService, MeshService
from meshxds.security.auth import DataplaneAuthenticator
from meshxds.security.cptls import ServerTLS, control_plane_tls
from meshxds.security.issuer import IdentityIssuer
from meshxds.security.state import StateDir
from meshxds.snapshots.builder import Builder, SnapshotError
from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.debug import DebugServer
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
        self.ads = AdsServer(self.cache, auth, self.tls)
        self.debug = DebugServer(self.cache, self.meshservices_yaml)
        self.catalog: Catalog | None = None
        self.seen: Fingerprint | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self._watcher: asyncio.Task[None] | None = None

    # -- loading ---------------------------------------------------------------------------------
    def build(self, previous: Catalog | None, connected: frozenset[str]) -> Built:
        """Load, validate and translate; reports problems on stderr. Pure apart from printing."""
        start = time.perf_counter()
        result = load_catalog(self.paths, zone=self.zone, previous=previous, connected=connected)
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
        built = await asyncio.to_thread(self.build, self.catalog, self.cache.connected())
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
                if self.rotation_due():
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
