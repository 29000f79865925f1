"""One leader among replicas: whoever holds a PostgreSQL session advisory lock.

Kuma elects with pglock on a ``locks`` row (lease 5 s, heartbeat 1 s; pkg/plugins/leader/postgres/
leader_elector.go) and names ``pg_advisory_lock`` as the alternative. The advisory lock is tied to
the session: when a leader dies (even ``kill -9``) its connection closes and the lock is free at once,
so a follower polling every ``interval`` takes over within about that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger("meshxds.store.leader")
LEADER_LOCK = 0x6D657368_0002  # "mesh" + 2
Callback = Callable[[bool], Awaitable[None]]


class LeaderElector:
    """Polls ``pg_try_advisory_lock``; ``on_change(True/False)`` runs when this replica gains or loses it."""

    def __init__(self, url: str, on_change: Callback, interval: float = 1.0) -> None:
        self.url = url
        self.on_change = on_change
        self.interval = interval
        self.leader = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.set(False)
        if self._conn is not None:
            await self._conn.close()

    async def set(self, leader: bool) -> None:
        if leader != self.leader:
            self.leader = leader
            log.info("%s leader", "became" if leader else "no longer")
            await self.on_change(leader)

    async def poll(self) -> bool:
        """One round: take the lock if free, or check that the session holding it is alive."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
            if self.leader:
                await self._conn.execute("SELECT 1")  # still connected means still holding the lock
            else:
                cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
                row = await cur.fetchone()
                await self.set(bool(row and row[0]))
        except psycopg.OperationalError as exc:
            log.warning("leader election: %s", str(exc).strip())
            if self._conn is not None:
                await self._conn.close()
            self._conn = None
            await self.set(False)
        return self.leader

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)
