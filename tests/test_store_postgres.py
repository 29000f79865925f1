"""The PostgreSQL store against a real server: schema, compare-and-swap, cascades, NOTIFY, leader lock.

Behaviour pinned to Kuma v2.14.3 pkg/plugins/resources/postgres/pgx_store.go (version 0 on create,
old+1 on update, 0 rows updated = conflict, unique violation = already exists), the migrations in
pkg/plugins/resources/postgres/migrations/data/ (owner_fk ON DELETE CASCADE, notify_event payload) and
pkg/plugins/resources/postgres/migrate.go (refuses a database migrated by a newer version).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest

from meshxds.store.leader import LeaderElector
from meshxds.store.listen import changes, parse_notification
from meshxds.store.migrations import LATEST
from meshxds.store.model import AlreadyExists, Change, Conflict, Key, MeshNotFound, NotFound, Record
from meshxds.store.postgres import PostgresStore, SchemaError

pytestmark = pytest.mark.real  # the tests here use the session's real PostgreSQL server

T = TypeVar("T")
MESH = Key("Mesh", "", "default")
SVC = Key("MeshService", "default", "redis")
SPEC = {"selector": {"dataplaneTags": {"app": "redis"}}, "ports": [{"port": 6379, "targetPort": 6379}]}


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def opened(url: str) -> PostgresStore:
    return await PostgresStore.open(url)


def test_migrations_apply_once_and_refuse_a_newer_database(postgres_url: str) -> None:
    async def go() -> None:
        (await opened(postgres_url))
        await (await opened(postgres_url)).close()  # second open: nothing to do, no error
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute("SELECT version, dirty FROM schema_migrations").fetchone()
            assert row == (LATEST, False)
            conn.execute("UPDATE schema_migrations SET version = %s", (LATEST + 1,))
        with pytest.raises(SchemaError, match="newer version"):
            await opened(postgres_url)

    run(go)


def test_create_update_conflict_and_times(postgres_url: str) -> None:
    async def go() -> None:
        store = await opened(postgres_url)
        await store.create(Record(MESH, {}))
        created = await store.create(Record(SVC, SPEC, {"team": "a"}))
        assert created.version == 0
        with pytest.raises(AlreadyExists, match="already exists"):
            await store.create(Record(SVC, SPEC))
        got = await store.get(SVC)
        assert (got.spec, got.labels, got.version) == (SPEC, {"team": "a"}, 0)
        updated = await store.update(Record(SVC, {**SPEC, "state": "Available"}, version=got.version))
        assert updated.version == 1
        # A second writer that read version 0 loses: the compare-and-swap matches no row.
        with pytest.raises(Conflict, match="resource conflict"):
            await store.update(Record(SVC, SPEC, version=0))
        again = await store.get(SVC)
        assert again.version == 1 and again.spec["state"] == "Available"
        assert again.creation_time == got.creation_time  # creation time is real and kept
        assert again.modification_time > got.modification_time
        await store.close()

    run(go)


def test_mesh_must_exist_and_deleting_it_deletes_its_contents(postgres_url: str) -> None:
    async def go() -> None:
        store = await opened(postgres_url)
        with pytest.raises(MeshNotFound, match="mesh of name default is not found"):
            await store.create(Record(SVC, SPEC))
        await store.create(Record(MESH, {}))
        await store.create(Record(Key("Mesh", "", "other"), {}))
        await store.create(Record(SVC, SPEC))
        await store.create(Record(Key("MeshService", "other", "redis"), SPEC))
        await store.create(Record(Key("HostnameGenerator", "", "h"), {"template": "x"}))
        await store.delete(MESH)
        assert [str(r.key) for r in await store.list()] == [
            "Mesh other",
            "MeshService other/redis",
            "HostnameGenerator h",
        ]
        with pytest.raises(NotFound):
            await store.get(SVC)
        with pytest.raises(NotFound):
            await store.delete(SVC)
        await store.close()

    run(go)


def test_list_is_oldest_first_and_filters(postgres_url: str) -> None:
    async def go() -> None:
        store = await opened(postgres_url)
        await store.create(Record(MESH, {}))
        for name in ("zeta", "alpha", "mid"):
            await store.create(Record(Key("MeshService", "default", name), SPEC))
        names = [r.name for r in await store.list("MeshService", "default")]
        assert names == ["zeta", "alpha", "mid"]  # creation order, not name order: "oldest wins" needs it
        assert [r.name for r in await store.list("Mesh")] == ["default"]
        assert await store.list("MeshService", "nope") == []
        await store.close()

    run(go)


def test_state_survives_reopen(postgres_url: str) -> None:
    async def go() -> None:
        store = await opened(postgres_url)
        assert await store.get_state("catalog") is None
        await store.put_state("catalog", {"allocated": ["241.0.0.1"]})
        await store.close()
        store = await opened(postgres_url)
        assert await store.get_state("catalog") == {"allocated": ["241.0.0.1"]}
        await store.close()

    run(go)


def test_notifications_name_the_changed_row_and_start_with_a_resync(postgres_url: str) -> None:
    """Payload of 1610445956_update_notify_event.up.sql: action plus name/mesh/type."""

    async def go() -> list[Change]:
        store = await opened(postgres_url)
        feed = changes(postgres_url)
        seen = [await anext(feed)]
        await store.create(Record(MESH, {}))
        await store.create(Record(SVC, SPEC))
        await store.update(Record(SVC, SPEC, version=0))
        await store.put_state("catalog", {})
        await store.delete(MESH)
        for _ in range(6):
            seen.append(await asyncio.wait_for(anext(feed), 5))
        await feed.aclose()  # type: ignore[attr-defined]
        await store.close()
        return seen

    seen = run(go)
    assert seen == [
        Change("RESYNC"),
        Change("INSERT", MESH),
        Change("INSERT", SVC),
        Change("UPDATE", SVC),
        Change("STATE", Key("state", "", "catalog")),
        Change("DELETE", MESH),
        Change("DELETE", SVC),  # the cascade notifies per row too, after the Mesh
    ]
    assert parse_notification("not json") is None


def test_one_leader_and_takeover_when_it_goes(postgres_url: str) -> None:
    async def go() -> list[tuple[str, bool]]:
        events: list[tuple[str, bool]] = []

        def recorder(name: str) -> Callable[[bool], Awaitable[None]]:
            async def on_change(leader: bool) -> None:
                events.append((name, leader))

            return on_change

        a = LeaderElector(postgres_url, recorder("a"), interval=0.05)
        a.start()
        await until(lambda: a.leader)
        b = LeaderElector(postgres_url, recorder("b"), interval=0.05)
        b.start()
        await asyncio.sleep(0.3)
        assert not b.leader
        await a.stop()  # closes its session: the advisory lock is released
        await until(lambda: b.leader)
        await b.stop()
        return events

    assert run(go) == [("a", True), ("a", False), ("b", True), ("b", False)]


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
