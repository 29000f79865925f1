"""``meshxds serve PATH...``: the ADS server on the resource files, reloading them when they change.

The glue between the pipeline and the server: load → validate → translate → ``cache.replace_all``.
Input is polled (mtime, size and inode of every file under the paths); a change is loaded in a
worker thread so streams keep being served meanwhile. Invalid input is reported with the same
lines as ``meshxds validate`` and the last good snapshots stay served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from meshxds.cli.token import state_dir
from meshxds.cli.validate import report
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
T = TypeVar("T")
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


class Background:
    """An event loop in a daemon thread, for callers that stay synchronous (the demo, tests)."""

    def __init__(self, name: str = "meshxds") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` on the loop (where the cache lives) and return its result."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def setup_logging(default: str = "INFO") -> None:
    """Log lines on stderr; ``MESHXDS_LOG=DEBUG`` (or WARNING...) overrides the level."""
    logging.basicConfig(
        level=os.environ.get("MESHXDS_LOG", default).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def serve(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir).root
    try:
        service = Service(
            args.paths, args.zone, args.poll_interval, state, secure=not args.insecure, tls_hosts=args.tls_host
        )
        await service.start(args.address, args.port, args.debug_port)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    announce_security(service, state)
    debug = f", debug http://{args.address}:{service.debug.port}/snapshots" if args.debug_port is not None else ""
    watching = ", ".join(args.paths)
    print(f"meshxds: ADS on {args.address}:{service.ads.port}{debug}; watching {watching}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()
    return 0


def announce_security(service: Service, state: Path) -> None:
    """Say how the ADS port is protected; loudly when it is not."""
    if service.tls is None:
        banner = "!" * 100
        print(
            f"{banner}\nWARNING: --insecure: ADS is PLAINTEXT and trusts any node id. Anyone who can reach this port"
            f" gets any proxy's configuration.\nUse only for local experiments.\n{banner}",
            file=sys.stderr,
        )
        return
    ca = state / "control-plane" / "ca.crt"
    log.info("ADS over TLS; dataplane tokens required; control-plane CA %s SHA-256 %s", ca, service.tls.ca_fingerprint)
    log.info("server certificate for %s", ", ".join(service.tls.hosts))


def run(args: argparse.Namespace) -> int:
    setup_logging()
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    return asyncio.run(serve(args))
