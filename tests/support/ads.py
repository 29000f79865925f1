"""Run the real ADS server on its own event loop in a background thread, for tests that drive Envoy.

Tests stay synchronous (they poll Envoy's admin API); every cache access is marshalled onto
the server's loop so the server keeps its single-threaded invariants.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from snapshots.snapshot import Snapshot
from xds.cache import SnapshotCache
from xds.server import AdsServer

T = TypeVar("T")


class ServerThread:
    """An ``AdsServer`` + ``SnapshotCache`` on a private loop. ``port`` survives ``restart()``."""

    def __init__(self, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ads-server", daemon=True)
        self.thread.start()
        self.cache = SnapshotCache()
        self.server: AdsServer | None = None
        self.port = port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

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
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache access ----------------------------------------------------------------------------
    def set(self, *snapshots: Snapshot) -> None:
        def apply() -> None:
            for snap in snapshots:
                self.cache.set(snap.node_id, snap)

        self.call(apply)

    def remove(self, node_id: str) -> None:
        self.call(lambda: self.cache.remove(node_id))

    def status(self, node_id: str) -> dict[str, Any]:
        return self.call(lambda: self.cache.node_status(node_id).to_json(self.cache.get(node_id)))
