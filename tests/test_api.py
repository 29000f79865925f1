"""Kuma's HTTP API over a real PostgreSQL store (and the read-only folder store).

Pinned to Kuma v2.14.3 pkg/api-server: resource_endpoints.go (PUT 201/200 with ``{}``, name/type/mesh
must match the URL, DELETE 200 ``{}``), pagination.go (size 100/max 1000, numeric offset, absolute
``next``), pkg/core/rest/errors/error_handler.go (the /std-errors shape), goldens
testdata/resources/crud/get_resource_not-found.golden.json, list_mesh_02.golden.json,
list_mesh_doesnt_exist_not_found.golden.json, and mesh_validator.go (no Mesh delete with Dataplanes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from meshxds.api.server import Api
from meshxds.api.token import admin_token
from meshxds.store.folder import FolderStore
from meshxds.store.model import Record, Store
from meshxds.store.postgres import PostgresStore

pytestmark = pytest.mark.real  # the tests here use the session's real PostgreSQL server

Client = TestClient[Any, Any]
MS = {
    "type": "MeshService",
    "name": "redis",
    "mesh": "default",
    "spec": {"selector": {"dataplaneTags": {"app": "redis"}}, "ports": [{"port": 6379, "targetPort": 6379}]},
}


def with_api(
    store_factory: Callable[[], Awaitable[Store]], body: Callable[[Client, dict[str, str]], Awaitable[None]]
) -> None:
    async def go() -> None:
        store = await store_factory()
        token = await admin_token(store)
        client: Client = TestClient(TestServer(Api(store, token).app()))
        await client.start_server()
        try:
            await body(client, {"Authorization": f"Bearer {token}"})
        finally:
            await client.close()
            await store.close()

    asyncio.run(go())


async def json_of(resp: Any) -> Any:
    return await resp.json()


def test_put_get_list_delete_round_trip(postgres_url: str) -> None:
    async def body(c: Client, auth: dict[str, str]) -> None:
        r = await c.put(
            "/meshes/default",
            json={"type": "Mesh", "name": "default", "meshServices": {"mode": "Exclusive"}},
            headers=auth,
        )
        assert (r.status, await r.json()) == (201, {})
        r = await c.put("/meshes/default/meshservices/redis", json=MS, headers=auth)
        assert (r.status, await r.json()) == (201, {})
        r = await c.put("/meshes/default/meshservices/redis", json=MS, headers=auth)
        assert (r.status, await r.json()) == (200, {})
        got = await json_of(await c.get("/meshes/default/meshservices/redis"))
        assert list(got)[:5] == ["type", "mesh", "name", "creationTime", "modificationTime"]
        assert got["spec"] == MS["spec"]
        assert got["labels"]["kuma.io/mesh"] == "default" and got["labels"]["kuma.io/origin"] == "zone"
        mesh = await json_of(await c.get("/meshes/default"))
        assert mesh["meshServices"] == {"mode": "Exclusive"} and "spec" not in mesh  # old-style: flattened
        assert (await json_of(await c.get("/meshservices")))["total"] == 1  # across meshes
        timeout = {
            "type": "MeshTimeout",
            "name": "t1",
            "mesh": "default",
            "spec": {
                "targetRef": {"kind": "Mesh"},
                "to": [{"targetRef": {"kind": "Mesh"}, "default": {"connectionTimeout": "2s"}}],
            },
        }
        r = await c.put("/meshes/default/meshtimeouts/t1", json=timeout, headers=auth)
        assert (r.status, await r.json()) == (201, {})
        assert (await json_of(await c.get("/meshes/default/meshtimeouts/t1")))["spec"] == timeout["spec"]
        r = await c.delete("/meshes/default/meshservices/redis", headers=auth)
        assert (r.status, await r.json()) == (200, {})
        r = await c.delete("/meshes/default/meshservices/redis", headers=auth)
        assert r.status == 404

    with_api(lambda: PostgresStore.open(postgres_url), body)


def test_errors_have_kumas_shape(postgres_url: str) -> None:
    async def body(c: Client, auth: dict[str, str]) -> None:
        r = await c.get("/meshes/default/meshservices/nope")
        assert r.status == 404
        assert await r.json() == {
            "type": "/std-errors",
            "status": 404,
            "title": "Could not retrieve a resource",
            "detail": "Not found",
            "details": "Not found",
        }
        r = await c.get("/meshes/nope/meshservices")
        assert (r.status, (await r.json())["title"]) == (404, "Failed to retrieve Mesh")
        r = await c.put("/meshes/nope/meshservices/redis", json={**MS, "mesh": "nope"}, headers=auth)
        assert r.status == 400
        assert (await r.json())["invalid_parameters"] == [{"field": "mesh", "reason": "mesh of name nope is not found"}]
        await c.put("/meshes/default", json={"type": "Mesh", "name": "default"}, headers=auth)
        bad = {**MS, "spec": {"selector": {}, "ports": [{"port": 70000}]}}
        r = await c.put("/meshes/default/meshservices/redis", json=bad, headers=auth)
        assert r.status == 400
        got = await r.json()
        assert got["detail"] == got["details"] == "Resource is not valid"
        assert got["invalid_parameters"] == [{"field": "spec.ports[0].port", "reason": "must be between 1 and 65535"}]
        assert got["causes"] == [{"field": "spec.ports[0].port", "message": "must be between 1 and 65535"}]
        two = {"dataplaneTags": {"app": "redis"}, "dataplaneRef": {"name": "redis-1"}}
        bad = {**MS, "spec": {"selector": two, "ports": [{"port": 80}]}}
        r = await c.put("/meshes/default/meshservices/redis", json=bad, headers=auth)
        fields = (await r.json())["invalid_parameters"]
        assert fields == [
            {
                "field": "spec.selector",
                "reason": "must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels",
            }
        ]
        r = await c.put("/meshes/default/meshservices/other", json=MS, headers=auth)
        assert (await r.json())["causes"][0]["message"] == "name from the URL has to be the same as in body"
        r = await c.get("/meshes?size=2000")
        assert (await r.json())["invalid_parameters"] == [
            {"field": "size", "reason": "invalid page size of 2000. Maximum page size is 1000"}
        ]
        r = await c.put("/meshes/default/meshservices/redis", json=MS)
        assert r.status == 401
        r = await c.put("/meshes/default/meshservices/redis", json=MS, headers={"Authorization": "Bearer wrong"})
        assert r.status == 401

    with_api(lambda: PostgresStore.open(postgres_url), body)


def test_paging_and_label_filter(postgres_url: str) -> None:
    async def body(c: Client, auth: dict[str, str]) -> None:
        await c.put("/meshes/default", json={"type": "Mesh", "name": "default"}, headers=auth)
        for name in ("c", "a", "b"):
            labelled = {**MS, "name": name, "labels": {"team": "x" if name != "b" else "y"}}
            assert (await c.put(f"/meshes/default/meshservices/{name}", json=labelled, headers=auth)).status == 201
        page = await json_of(await c.get("/meshes/default/meshservices?size=2"))
        assert page["total"] == 3 and [i["name"] for i in page["items"]] == ["a", "b"]
        assert page["next"].endswith("/meshes/default/meshservices?offset=2&size=2")
        last = await json_of(await c.get("/meshes/default/meshservices?size=2&offset=2"))
        assert [i["name"] for i in last["items"]] == ["c"] and last["next"] is None
        filtered = await json_of(await c.get("/meshes/default/meshservices?filter[labels.team]=x"))
        assert [i["name"] for i in filtered["items"]] == ["a", "c"]
        r = await c.get("/meshes/default/meshservices?filter[name]=x")
        assert (await r.json())["invalid_parameters"][0]["reason"] == "filters are only supported on labels"
        named = await json_of(await c.get("/meshes/default/meshservices?name=b"))
        assert [i["name"] for i in named["items"]] == ["b"]

    with_api(lambda: PostgresStore.open(postgres_url), body)


class RacingStore(PostgresStore):
    """A real second writer updates the row between the API's read and its write (no mock: real SQL)."""

    async def update(self, record: Record) -> Record:
        other = await PostgresStore.open(self.url)
        current = await other.get(record.key)
        await other.update(current)
        await other.close()
        return await super().update(record)


def test_concurrent_write_answers_409(postgres_url: str) -> None:
    async def body(c: Client, auth: dict[str, str]) -> None:
        await c.put("/meshes/default", json={"type": "Mesh", "name": "default"}, headers=auth)
        assert (await c.put("/meshes/default/meshservices/redis", json=MS, headers=auth)).status == 201
        r = await c.put("/meshes/default/meshservices/redis", json=MS, headers=auth)
        assert r.status == 409
        got = await r.json()
        assert (got["title"], got["detail"]) == (
            "Conflict",
            "resource conflict: type='MeshService' name='redis' mesh='default'",
        )

    async def racing() -> Store:
        store = RacingStore(postgres_url)
        await PostgresStore.open(postgres_url)  # migrate
        return store

    with_api(racing, body)


def test_deleting_a_mesh_deletes_its_contents_but_not_with_dataplanes(postgres_url: str) -> None:
    dp = {
        "type": "Dataplane",
        "name": "dp",
        "mesh": "m1",
        "networking": {"address": "10.0.0.1", "inbound": [{"port": 80, "tags": {"kuma.io/service": "s"}}]},
    }

    async def body(c: Client, auth: dict[str, str]) -> None:
        await c.put("/meshes/m1", json={"type": "Mesh", "name": "m1"}, headers=auth)
        await c.put("/meshes/m1/meshservices/redis", json={**MS, "mesh": "m1"}, headers=auth)
        assert (await c.put("/meshes/m1/dataplanes/dp", json=dp, headers=auth)).status == 201
        r = await c.delete("/meshes/m1", headers=auth)
        assert r.status == 400
        reason = (await r.json())["invalid_parameters"][0]["reason"]
        assert reason == "unable to delete mesh, there are still some dataplanes attached"
        assert (await c.delete("/meshes/m1/dataplanes/dp", headers=auth)).status == 200
        assert (await c.delete("/meshes/m1", headers=auth)).status == 200
        assert (await json_of(await c.get("/meshservices")))["total"] == 0

    with_api(lambda: PostgresStore.open(postgres_url), body)


def test_folder_mode_is_read_only(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text("type: Mesh\nname: default\n")

    async def folder() -> Store:
        return FolderStore([tmp_path], state_dir=tmp_path / "state")

    async def body(c: Client, auth: dict[str, str]) -> None:
        assert [i["name"] for i in (await json_of(await c.get("/meshes")))["items"]] == ["default"]
        r = await c.put("/meshes/default/meshservices/redis", json=MS, headers=auth)
        assert r.status == 405
        assert "the resource folder is the source of truth" in (await r.json())["detail"]

    with_api(folder, body)
