"""Freeing a replaced build in small slices on the loop, so no single drop stalls the server.

A build is millions of objects. When the last reference to the previous build's snapshots goes in
one statement (the cache replacing them), CPython frees them in one C-level cascade with the GIL
held: tens of milliseconds in which no stream is served. The service instead keeps the previous
build's containers until the new one is in the cache, then hands them here: the reaper empties them
a slice at a time (``popitem`` drops one entry and whatever only it kept alive) and yields to the
loop between slices, each slice bounded by a time budget.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import MutableMapping
from typing import Any

SLICE = 20  # entries dropped between two budget checks (one snapshot can own thousands of objects)
BUDGET = 0.002  # seconds of freeing before the reaper yields to the loop


class Reaper:
    """Empties released dicts (and drops other objects) in bounded slices, in one task on the loop."""

    def __init__(self, budget: float = BUDGET, slice_items: int = SLICE) -> None:
        self.budget = budget
        self.slice_items = slice_items
        self.freed = 0  # entries dropped so far
        self.worst_slice = 0.0  # seconds of the longest slice (what the loop waited at most)
        self._queue: collections.deque[MutableMapping[Any, Any] | list[Any]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    def release(self, *things: Any) -> None:
        """Free ``things`` soon: dicts are emptied entry by entry, anything else is dropped in one slice.

        The caller must hold no other reference that matters: what is still used elsewhere (a snapshot
        the new build reuses) simply stays alive when the reaper lets go of it.
        """
        for thing in things:
            if thing is None:
                continue
            if isinstance(thing, dict):
                self._queue.append(thing)
            else:
                self._queue.append([thing])
        if self._queue and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reaper")

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    async def drain(self) -> None:
        """Until everything released so far is freed (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while self._queue:
            start = time.perf_counter()
            self._slice(self._queue[0])  # at least one slice per turn, then more while within the budget
            while self._queue and time.perf_counter() - start < self.budget:
                self._slice(self._queue[0])
            self.worst_slice = max(self.worst_slice, time.perf_counter() - start)
            await asyncio.sleep(0)

    def _slice(self, target: MutableMapping[Any, Any] | list[Any]) -> None:
        n = 0
        if isinstance(target, list):
            while target and n < self.slice_items:
                target.pop()
                n += 1
        else:
            with contextlib.suppress(KeyError):
                while n < self.slice_items:
                    target.popitem()
                    n += 1
        self.freed += n
        if not target:
            self._queue.popleft()

    async def stop(self) -> None:
        """Free the rest at once (the service is stopping: nothing to keep responsive)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue.clear()
