"""The store-backed control plane in-process: one write re-parses one record, and a lost NOTIFY
connection is repaired by a full resync (Kuma's listener has no replay: pkg/plugins/common/postgres/
pgx_listener.go; meshxds resyncs on every reconnect instead).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from meshxds.control.background import Background
from meshxds.control.store_service import StoreService
from meshxds.store.convert import parse_body, record_of
from meshxds.store.model import AlreadyExists, Key, Record
from meshxds.store.postgres import PostgresStore
from meshxds.xds.bootstrap import bootstrap_config
from tests.support.dns import NOERROR, resolve
from tests.support.envoy import Envoy
from tests.support.net import free_port
from tests.support.poll import wait_until
from tests.test_dns_envoy import CLIENT, free_udp_port

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


def test_a_store_backed_replica_gives_envoy_its_dns_listener(postgres_url: str, tmp_path: Path) -> None:
    """What sidecars report reaches the store-backed service too: node metadata ``dataplane.dns.port``
    (Kuma's DNSGenerator, pkg/xds/generator/dns_generator.go) gives the sidecar its DNS listener."""
    text = (
        MESH_YAML
        + "\n---\n"
        + CLIENT.format(inbound=free_port(), reachable="backend", refs="{kind: MeshService, name: backend}")
    )
    bg = Background("store-dns")
    dns = free_udp_port()

    async def up() -> StoreService:
        store = await PostgresStore.open(postgres_url)
        service = StoreService(store)
        await service.start("127.0.0.1", 0)
        for doc in yaml.safe_load_all(text):
            item, problems = parse_body(doc, "default")
            assert item is not None, problems
            record = record_of(item)
            try:
                await store.create(record)
            except AlreadyExists:  # the default Mesh
                current = await store.get(record.key)
                await store.update(replace(record, version=current.version))
        return service

    service = bg.run(up())
    try:
        wait_until(lambda: bg.call(lambda: service.cache.get("default.web-1")) is not None, what="web-1 built")
        with Envoy(bootstrap_config("default.web-1", ads_port=service.ads.port, dns_port=dns), tmp_path):
            answer = wait_until(lambda: resolve("backend.svc.mesh.local", dns), timeout=15, what="DNS answers")
            assert answer.rcode == NOERROR and len(answer.addresses) == 1
    finally:
        bg.run(service.stop())
        bg.close()


MESH_YAML = """\
type: Mesh
name: default
meshServices:
  mode: Everywhere
---
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 10.0.1.1
  inbound:
    - port: 8080
      tags:
        kuma.io/service: backend
"""
