"""The PostgreSQL store: Kuma's table layout, compare-and-swap updates, cascading Mesh deletes.

Each statement runs on its own autocommitted connection taken from a small pool, so replicas see each
other's writes immediately. Errors map to the store's typed errors as pgx_store.go maps them: a unique
violation is AlreadyExists, 0 rows updated is Conflict, a missing owner Mesh is MeshNotFound.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from meshxds.store.migrations import LATEST, MIGRATIONS
from meshxds.store.model import (
    AlreadyExists,
    Conflict,
    Key,
    MeshNotFound,
    NotFound,
    Record,
    Store,
    StoreError,
    is_global,
    now,
)

MIGRATION_LOCK = 0x6D657368_0001  # pg_advisory_xact_lock key: one replica migrates at a time
COLUMNS = "name, mesh, type, spec, version, creation_time, modification_time, labels, status"
Observer = Callable[[str, float], None]  # (operation, seconds): store latency for the metrics


class SchemaError(StoreError):
    """The database schema is not one this binary can use."""


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def naive(t: datetime) -> datetime:
    """Kuma writes ``.UTC()`` into ``timestamp`` columns; so do we."""
    return t.astimezone(UTC).replace(tzinfo=None)


def row_record(row: tuple[Any, ...]) -> Record:
    name, mesh, type_, spec, version, created, modified, labels, status = row
    return Record(
        key=Key(type_, mesh, name),
        spec=json.loads(spec) if spec else {},
        labels=labels or {},
        status=status or {},
        version=version,
        creation_time=utc(created),
        modification_time=utc(modified),
    )


async def migrate(conn: psycopg.AsyncConnection[Any]) -> int:
    """Apply missing migrations in one transaction; returns the schema version now in force."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, dirty boolean)")
        cur = await conn.execute("SELECT max(version) FROM schema_migrations")
        row = await cur.fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        if current > LATEST:
            raise SchemaError(
                f"DB is migrated to newer version than meshxds. DB migration version {current}. "
                f"meshxds migration version {LATEST}. Run newer version of meshxds"
            )
        for version, sql in MIGRATIONS:
            if version > current:
                await conn.execute(sql.encode())
                await conn.execute("DELETE FROM schema_migrations")
                await conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, false)", (version,))
                current = version
    return current


class PostgresStore(Store):
    """``postgres://USER@HOST:PORT/DB``; open with ``await PostgresStore.open(url)``."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        self.description = redact(url)
        self.pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []
        self.observer: Observer | None = None
        self.on_conflict: Callable[[str], None] | None = None  # resource type: for store_conflicts

    @classmethod
    async def open(cls, url: str, pool_size: int = 4) -> PostgresStore:
        store = cls(url, pool_size)
        conn = await store.connect()
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return store

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)

    @asynccontextmanager
    async def connection(self, operation: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; a broken one is dropped instead of returned."""
        if self._idle.empty() and len(self._all) < self.pool_size:
            conn = await self.connect()
            self._all.append(conn)
        else:
            conn = await self._idle.get()
        start = time.perf_counter()
        broken = False
        try:
            yield conn
        except psycopg.OperationalError:
            broken = True
            raise
        finally:
            if self.observer is not None:
                self.observer(operation, time.perf_counter() - start)
            if broken or conn.closed:
                self._all.remove(conn)
                await conn.close()
            else:
                self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()

    # -- resources -------------------------------------------------------------------------------
    async def get(self, key: Key) -> Record:
        async with self.connection("get") as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM resources WHERE name=%s AND mesh=%s AND type=%s",
                (key.name, key.mesh, key.type),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(key)
        return row_record(row)

    async def list(self, type: str | None = None, mesh: str | None = None) -> list[Record]:
        where: list[str] = []
        args: list[str] = []
        if type is not None:
            where.append("type=%s")
            args.append(type)
        if mesh is not None:
            where.append("mesh=%s")
            args.append(mesh)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        async with self.connection("list") as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM resources {clause} ORDER BY creation_time, type, mesh, name",
                args,
            )
            rows = await cur.fetchall()
        return [row_record(r) for r in rows]

    async def create(self, record: Record) -> Record:
        key = record.key
        owner = (None, None, None) if is_global(key.type) else (key.mesh, "", "Mesh")
        created = now()
        try:
            async with self.connection("create") as conn:
                await conn.execute(
                    "INSERT INTO resources (name, mesh, type, version, spec, creation_time, modification_time,"
                    " owner_name, owner_mesh, owner_type, labels, status)"
                    " VALUES (%s, %s, %s, 0, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        key.name,
                        key.mesh,
                        key.type,
                        json.dumps(dict(record.spec)),
                        naive(created),
                        naive(created),
                        *owner,
                        Jsonb(dict(record.labels)),
                        Jsonb(dict(record.status)),
                    ),
                )
        except pg_errors.UniqueViolation as exc:
            raise AlreadyExists(key) from exc
        except pg_errors.ForeignKeyViolation as exc:
            raise MeshNotFound(key.mesh) from exc
        return Record(key, record.spec, record.labels, record.status, 0, created, created)

    async def update(self, record: Record) -> Record:
        key = record.key
        modified = now()
        async with self.connection("update") as conn:
            cur = await conn.execute(
                "UPDATE resources SET spec=%s, version=%s, modification_time=%s, labels=%s, status=%s"
                " WHERE name=%s AND mesh=%s AND type=%s AND version=%s RETURNING creation_time",
                (
                    json.dumps(dict(record.spec)),
                    record.version + 1,
                    naive(modified),
                    Jsonb(dict(record.labels)),
                    Jsonb(dict(record.status)),
                    key.name,
                    key.mesh,
                    key.type,
                    record.version,
                ),
            )
            row = await cur.fetchone()
        if row is None:
            if self.on_conflict is not None:
                self.on_conflict(key.type)
            raise Conflict(key)
        return Record(key, record.spec, record.labels, record.status, record.version + 1, utc(row[0]), modified)

    async def delete(self, key: Key) -> None:
        async with self.connection("delete") as conn:
            cur = await conn.execute(
                "DELETE FROM resources WHERE name=%s AND type=%s AND mesh=%s", (key.name, key.type, key.mesh)
            )
            if cur.rowcount == 0:
                raise NotFound(key)

    # -- control-plane state ---------------------------------------------------------------------
    async def get_state(self, name: str) -> dict[str, Any] | None:
        async with self.connection("get_state") as conn:
            cur = await conn.execute("SELECT value FROM meshxds_state WHERE name=%s", (name,))
            row = await cur.fetchone()
        return dict(row[0]) if row else None

    async def put_state(self, name: str, value: dict[str, Any]) -> None:
        async with self.connection("put_state") as conn:
            await conn.execute(
                "INSERT INTO meshxds_state (name, value, modification_time) VALUES (%s, %s, now())"
                " ON CONFLICT (name) DO UPDATE SET value=EXCLUDED.value, modification_time=now()"
                " WHERE meshxds_state.value IS DISTINCT FROM EXCLUDED.value",
                (name, Jsonb(value)),
            )


def redact(url: str) -> str:
    """The URL without a password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
