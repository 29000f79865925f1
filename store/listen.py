"""Change notifications from PostgreSQL (LISTEN/NOTIFY), with a full resync after a lost connection.

Kuma's listener (pkg/plugins/common/postgres/pgx_listener.go) drops events when its buffer is full
and never replays after a reconnect. Here every (re)connection first yields a RESYNC change, so the
consumer re-reads the store and nothing written while the connection was down is missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import psycopg

from meshxds.store.migrations import CHANNEL
from meshxds.store.model import Change, Key

log = logging.getLogger("meshxds.store.listen")


def parse_notification(payload: str) -> Change | None:
    """``{"action": "UPDATE", "data": {"name", "mesh", "type"}}`` → Change; None when unreadable."""
    try:
        body = json.loads(payload)
        action = str(body["action"])
        data = body["data"]
        if action == "STATE":
            return Change("STATE", Key("state", "", str(data["name"])))
        return Change(action, Key(str(data["type"]), str(data["mesh"]), str(data["name"])))
    except (ValueError, KeyError, TypeError):
        return None


async def changes(url: str, retry: float = 0.5, max_retry: float = 5.0) -> AsyncIterator[Change]:
    """Forever: RESYNC once LISTEN is in place, then one Change per notification; reconnects on errors."""
    delay = retry
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            log.warning("cannot listen for changes (%s); retrying in %.1fs", str(exc).strip(), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry)
            continue
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            delay = retry
            yield Change("RESYNC")
            async for note in conn.notifies():
                change = parse_notification(note.payload)
                if change is not None:
                    yield change
        except psycopg.OperationalError as exc:
            log.warning("lost the change notifications (%s); reconnecting and resyncing", str(exc).strip())
        finally:
            await conn.close()
        await asyncio.sleep(delay)
