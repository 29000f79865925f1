"""The Mirror and the persisted state: one change costs one re-parse; a restart never moves a VIP.

Kuma keeps VIPs in MeshService status in the store (pkg/core/resources/apis/core/vip/allocator.go,
leader only) so they survive restarts; meshxds persists the Catalog's services and VIP history.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from meshxds.store.folder import FolderStore, StateDir
from meshxds.store.mirror import Mirror
from meshxds.store.model import Change, Key, Record
from meshxds.store.postgres import PostgresStore
from meshxds.store.state import STATE_NAME, previous_catalog, remembered

pytestmark = pytest.mark.real  # the tests here use the session's real PostgreSQL server

MESH_SPEC = {"meshServices": {"mode": "Exclusive"}}


def dataplane(app: str, octet: int) -> Record:
    spec = {
        "networking": {
            "address": f"10.0.0.{octet}",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": app, "app": app}}],
        }
    }
    return Record(Key("Dataplane", "default", f"{app}-1"), spec)


def vips(mirror: Mirror, previous: object = None) -> dict[str, str]:
    result = mirror.catalog(previous)  # type: ignore[arg-type]
    assert result.catalog is not None, [str(p) for p in result.errors]
    return {ms.name: ms.status.vips[0].ip for ms in result.catalog.meshes["default"].mesh_services}


def test_a_change_reparses_one_record_and_state_keeps_vips_across_restarts(postgres_url: str) -> None:
    async def go() -> None:
        store = await PostgresStore.open(postgres_url)
        await store.create(Record(Key("Mesh", "", "default"), MESH_SPEC))
        for i, app in enumerate(("alpha", "beta", "gamma"), start=1):
            await store.create(dataplane(app, i))
        mirror = Mirror(store)
        await mirror.apply(Change("RESYNC"))
        first = vips(mirror)
        assert sorted(first) == ["alpha", "beta", "gamma"]
        assert mirror.parses == 4
        result = mirror.catalog()
        assert result.catalog is not None
        await store.put_state(STATE_NAME, remembered(result.catalog))

        await store.delete(Key("Dataplane", "default", "alpha-1"))
        assert await mirror.apply(Change("DELETE", Key("Dataplane", "default", "alpha-1")))
        assert not await mirror.apply(Change("UPDATE", Key("Dataplane", "default", "beta-1")))  # unchanged row
        assert mirror.parses == 4  # nothing re-parsed for a delete or an unchanged row

        # A restarted process: without the state, beta and gamma would take alpha's freed VIPs.
        restarted = Mirror(store)
        await restarted.apply(Change("RESYNC"))
        assert vips(restarted) != {k: v for k, v in first.items() if k != "alpha"}
        previous = previous_catalog(await store.get_state(STATE_NAME))
        assert vips(restarted, previous) == {"beta": first["beta"], "gamma": first["gamma"]}
        # A new service never reuses a VIP handed out before (alpha's).
        await store.create(dataplane("delta", 4))
        await restarted.apply(Change("INSERT", Key("Dataplane", "default", "delta-1")))
        assert vips(restarted, previous)["delta"] not in first.values()
        await store.close()

    asyncio.run(go())


def test_folder_store_is_read_only_and_keeps_state_in_the_state_dir(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mesh.yaml").write_text("type: Mesh\nname: default\n")

    async def go() -> None:
        store = FolderStore([tmp_path / "in"], state_dir=tmp_path / "state")
        assert [str(r.key) for r in await store.list()] == ["Mesh default"]
        try:
            await store.create(Record(Key("Mesh", "", "x"), {}))
        except Exception as exc:
            assert "source of truth" in str(exc)
        else:
            raise AssertionError("a folder store accepted a write")
        await store.put_state("catalog", {"allocated": ["241.0.0.7"]})

    asyncio.run(go())
    assert StateDir(tmp_path / "state").get("catalog") == {"allocated": ["241.0.0.7"]}
    assert previous_catalog({"services": [{"kind": "MeshService", "mesh": "d", "name": "x", "vips": ["1.2.3.4"]}]})
