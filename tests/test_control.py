"""The store-backed control plane in-process: one write re-parses one record, and a lost NOTIFY
connection is repaired by a full resync (Kuma's listener has no replay: pkg/plugins/common/postgres/
pgx_listener.go; meshxds resyncs on every reconnect instead).
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from meshxds.control.store_service import StoreService
from meshxds.store.model import Key, Record
from meshxds.store.postgres import PostgresStore

pytestmark = pytest.mark.real  # the tests here use the session's real PostgreSQL server


def dataplane(name: str, octet: int) -> Record:
    spec = {"networking": {"address": f"10.0.0.{octet}", "inbound": [{"port": 80, "tags": {"kuma.io/service": name}}]}}
    return Record(Key("Dataplane", "default", name), spec)


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_one_write_reparses_one_record_and_a_lost_listener_resyncs(postgres_url: str) -> None:
    async def go() -> None:
        writer = await PostgresStore.open(postgres_url)
        service = StoreService(await PostgresStore.open(postgres_url))
        await service.start("127.0.0.1", 0)  # creates the default Mesh as the leader
        for i in range(1, 6):
            await writer.create(dataplane(f"dp-{i}", i))
        await until(lambda: len(service.cache.nodes()) == 5)
        parses = service.mirror.parses
        await writer.update(Record(dataplane("dp-1", 99).key, dataplane("dp-1", 99).spec, version=0))
        await until(lambda: service.current is not None and _address(service, "dp-1") == "10.0.0.99")
        assert service.mirror.parses == parses + 1  # only the changed record was parsed again

        # Cut the LISTEN connection from the server side and write while it is down.
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
        await writer.create(dataplane("dp-6", 6))
        await until(lambda: "default.dp-6" in service.cache.nodes())
        assert service.metrics.changes.labels("RESYNC")._value.get() >= 2  # the start and the reconnect
        await service.stop()
        await writer.close()

    asyncio.run(go())


def _address(service: StoreService, name: str) -> str | None:
    assert service.current is not None
    dp = service.current.dataplane(f"default.{name}")
    return dp.networking.address if dp else None
