"""Run the real ADS server (or the whole ``serve`` service) on a background loop, for tests that drive Envoy.

Tests stay synchronous (they poll Envoy's admin API); every cache access is marshalled onto
the server's loop so the server keeps its single-threaded invariants.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshxds.control.background import Background
from meshxds.control.service import Service
from meshxds.snapshots.snapshot import Snapshot
from meshxds.translators.health import HdsSettings
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import AdsServer


class ServerThread(Background):
    """An ``AdsServer`` + ``SnapshotCache`` with hand-made snapshots. ``port`` survives ``restart()``."""

    def __init__(self, port: int = 0) -> None:
        super().__init__("ads-server")
        self.cache = SnapshotCache()
        self.server: AdsServer | None = None
        self.port = port

    def start(self) -> ServerThread:
        self.server = AdsServer(self.cache)
        self.port = self.run(self.server.start("127.0.0.1", self.port))
        return self

    def stop(self, grace: float | None = 0.2) -> None:
        if self.server is not None:
            self.run(self.server.stop(grace))
            self.server = None

    def restart(self, keep_cache: bool = True) -> None:
        """Stop and start on the same port; a fresh cache unless ``keep_cache``."""
        self.stop()
        if not keep_cache:
            self.cache = SnapshotCache()
        self.start()

    def close(self) -> None:
        self.stop()
        super().close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, *snapshots: Snapshot) -> None:
        def apply() -> None:
            for snap in snapshots:
                self.cache.set(snap.node_id, snap)

        self.call(apply)

    def remove(self, node_id: str) -> None:
        self.call(lambda: self.cache.remove(node_id))

    def status(self, node_id: str) -> dict[str, Any]:
        return self.call(lambda: self.cache.node_status(node_id).to_json(self.cache.get(node_id)))


class ServiceThread(Background):
    """``meshxds serve`` (files → snapshots → ADS, with polling reload) on a background loop."""

    def __init__(
        self, paths: Sequence[str | Path], poll_interval: float = 0.02, port: int = 0, hds: HdsSettings | None = None
    ) -> None:
        super().__init__("meshxds-serve")
        self.service = Service(paths, poll_interval=poll_interval, hds=hds)
        self.port = port

    def start(self) -> ServiceThread:
        self.run(self.service.start("127.0.0.1", self.port, debug_port=0))
        self.port = self.service.ads.port
        return self

    def stop(self) -> None:
        self.run(self.service.stop())

    def restart(self) -> None:
        """A new server process in all but name: fresh cache, fresh streams, same port and files."""
        self.stop()
        old = self.service
        self.service = Service(old.paths, poll_interval=old.poll_interval, hds=old.reports.settings)
        self.start()

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    def snapshot(self, node_id: str) -> Snapshot | None:
        return self.call(lambda: self.service.cache.get(node_id))

    def status(self, node_id: str) -> dict[str, Any]:
        cache = self.service.cache
        return self.call(lambda: cache.node_status(node_id).to_json(cache.get(node_id)))
