"""Kuma's HTTP API (pkg/api-server) on aiohttp, on the same event loop as the ADS server.

Routes (server.go:addResourcesEndpoints, resource_endpoints.go):
  GET/PUT/DELETE /meshes/{mesh}/{plural}/{name}; GET /meshes/{mesh}/{plural}; GET /{plural} (all meshes);
  GET/PUT/DELETE /{plural}/{name} and GET /{plural} for global types (meshes, hostnamegenerators, ...);
  GET /meshes/{mesh}/dataplanes/{name}/_config and /_rules;
  GET /meshes/{mesh}/meshservices/{name}/_resources/dataplanes (alias /_dataplanes).
PUT creates (201) or updates (200) with ``{}``; validation uses the loader and ``validate``, so the
messages are the CLI's; writes need ``Authorization: Bearer <admin token>``; a read-only store answers
405. The control plane owns status: status in a body is ignored, and reads show the live status.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from aiohttp import web

from meshxds.api.errors import bad_request, error, invalid, not_found
from meshxds.api.token import STATE_NAME as TOKEN_STATE
from meshxds.api.token import bearer_matches
from meshxds.resources import model as m
from meshxds.resources.catalog import Catalog
from meshxds.resources.match import DataplaneIndex
from meshxds.resources.validate import validate
from meshxds.store.convert import parse_body, record_of, rest_json
from meshxds.store.model import (
    KINDS_BY_PLURAL,
    AlreadyExists,
    Change,
    Conflict,
    Key,
    MeshNotFound,
    NotFound,
    Record,
    Store,
    is_global,
)

DEFAULT_PAGE = 100
MAX_PAGE = 1000  # pagination.go maxPageSize


class View(Protocol):
    """What the running control plane shows beside the store: the Catalog and per-proxy config."""

    def catalog(self) -> Catalog | None: ...

    def config(self, node_id: str) -> dict[str, Any] | None: ...


class NoView:
    """A store without a running control plane (tests, tools): no Catalog, no proxy config."""

    def catalog(self) -> Catalog | None:
        return None

    def config(self, node_id: str) -> dict[str, Any] | None:
        return None


@dataclass
class Api:
    """The handlers; ``on_write`` hears each accepted write at once (before the NOTIFY comes back)."""

    store: Store
    token: str
    zone: str = "default"
    view: View = NoView()  # noqa: RUF009 - stateless default
    on_write: Callable[[Change], Awaitable[None]] | None = None

    # -- plumbing ------------------------------------------------------------------------------------
    def app(self, extra: Callable[[web.Application], None] | None = None) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/meshes/{mesh}/dataplanes/{name}/_config", self.config)
        r.add_get("/meshes/{mesh}/dataplanes/{name}/_rules", self.rules)
        r.add_get("/meshes/{mesh}/meshservices/{name}/_resources/dataplanes", self.service_dataplanes)
        r.add_get("/meshes/{mesh}/meshservices/{name}/_dataplanes", self.service_dataplanes)
        r.add_get("/meshes/{mesh}/{plural}", self.list_in_mesh)
        r.add_route("*", "/meshes/{mesh}/{plural}/{name}", self.one_in_mesh)
        if extra is not None:
            extra(app)
        r.add_get("/{plural}", self.list_top)
        r.add_route("*", "/{plural}/{name}", self.one_global)
        return app

    async def index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"hostname": socket.gethostname(), "product": "meshxds", "version": "0.1.0", "basedOnKuma": "2.14.3"}
        )

    async def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if bearer_matches(header, self.token):
            return True
        state = await self.store.get_state(TOKEN_STATE)  # another replica may have created it first
        if state and isinstance(state.get("token"), str) and bearer_matches(header, state["token"]):
            self.token = state["token"]
            return True
        return False

    # -- reads -----------------------------------------------------------------------------------------
    def status(self, record: Record) -> dict[str, Any] | None:
        """The live status from the Catalog (the control plane owns it), for MeshService and MZS."""
        svc = self.service(record.key)
        if svc is None:
            return None
        body: dict[str, Any] = svc.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        return body

    def service(self, key: Key) -> m.MeshService | m.MeshMultiZoneService | None:
        catalog = self.view.catalog()
        view = catalog.meshes.get(key.mesh) if catalog else None
        if view is None:
            return None
        services: list[m.MeshService | m.MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        return next((s for s in services if s.kind == key.type and s.name == key.name), None)

    def generated(self, kind: str, mesh: str | None) -> list[Record]:
        """MeshServices the generator made from Dataplane inbounds: listed as Kuma lists its stored ones."""
        catalog = self.view.catalog()
        if kind != "MeshService" or catalog is None:
            return []
        out = []
        for view in catalog.meshes.values():
            if mesh is not None and view.name != mesh:
                continue
            for ms in view.mesh_services:
                if ms.labels.get(m.MANAGED_BY_LABEL) == m.MANAGED_BY_GENERATOR:
                    spec = ms.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
                    out.append(Record(Key("MeshService", ms.mesh, ms.name), spec, dict(ms.labels)))
        return out

    async def mesh_exists(self, mesh: str) -> bool:
        try:
            await self.store.get(Key("Mesh", "", mesh))
        except NotFound:
            return False
        return True

    async def get_one(self, key: Key) -> web.Response:
        title = "Could not retrieve a resource"
        record: Record | None
        try:
            record = await self.store.get(key)
        except NotFound:
            record = next((r for r in self.generated(key.type, key.mesh) if r.key == key), None)
        if record is None:
            return not_found(title)
        return web.json_response(rest_json(record, self.status(record)))

    async def list_of(self, request: web.Request, kind: str, mesh: str | None) -> web.Response:
        title = "Could not retrieve resources"
        size_arg = request.query.get("size", str(DEFAULT_PAGE))
        try:
            size = int(size_arg)
        except ValueError:
            return error(400, title, "Invalid page size", [("size", "invalid format")])
        if size < 1:
            return error(400, title, "Invalid page size", [("size", "must be greater than 0")])
        if size > MAX_PAGE:
            reason = f"invalid page size of {size}. Maximum page size is {MAX_PAGE}"
            return error(400, title, "Invalid page size", [("size", reason)])
        offset_arg = request.query.get("offset", "0") or "0"
        try:
            offset = int(offset_arg)
            if offset < 0:
                raise ValueError
        except ValueError:
            return error(400, title, f"invalid offset: {offset_arg}")
        labels: dict[str, str] = {}
        for key, value in request.query.items():
            if key.startswith("filter["):
                inner = key[len("filter[") : key.index("]")] if "]" in key else ""
                if not inner.startswith("labels.") or not key.endswith("]"):
                    field = f"{request.path}.{key}"
                    reason = (
                        "advanced filters are not supported" if "]." in key else "filters are only supported on labels"
                    )
                    return error(400, title, "Resource is not valid", [(field, reason)])
                labels[inner[len("labels.") :]] = value
        records = await self.store.list(kind, mesh)
        known = {r.key for r in records}
        records += [r for r in self.generated(kind, mesh) if r.key not in known]
        name = request.query.get("name", "")
        records = [r for r in records if name in r.name and all(r.labels.get(k) == v for k, v in labels.items())]
        records.sort(key=lambda r: (r.mesh, r.name))  # model.ByMeta
        page = records[offset : offset + size]
        nxt = None
        if offset + size < len(records):
            query = {k: v for k, v in request.query.items() if k not in ("offset", "size")}
            query.update({"offset": str(offset + size), "size": str(size)})
            nxt = f"{request.scheme}://{request.host}{request.path}?{urlencode(query)}"
        items = [rest_json(r, self.status(r)) for r in page]
        return web.json_response({"total": len(records), "items": items, "next": nxt})

    async def list_in_mesh(self, request: web.Request) -> web.Response:
        kind = KINDS_BY_PLURAL.get(request.match_info["plural"])
        if kind is None or is_global(kind):
            return bad_request(f"unknown resource type {request.match_info['plural']!r}")
        mesh = request.match_info["mesh"]
        if not await self.mesh_exists(mesh):
            return not_found("Failed to retrieve Mesh")
        return await self.list_of(request, kind, mesh)

    async def list_top(self, request: web.Request) -> web.Response:
        kind = KINDS_BY_PLURAL.get(request.match_info["plural"])
        if kind is None:
            raise web.HTTPNotFound()
        return await self.list_of(request, kind, None)

    # -- one resource ------------------------------------------------------------------------------
    async def one_in_mesh(self, request: web.Request) -> web.Response:
        kind = KINDS_BY_PLURAL.get(request.match_info["plural"])
        if kind is None or is_global(kind):
            return bad_request(f"unknown resource type {request.match_info['plural']!r}")
        return await self.one(request, Key(kind, request.match_info["mesh"], request.match_info["name"]))

    async def one_global(self, request: web.Request) -> web.Response:
        kind = KINDS_BY_PLURAL.get(request.match_info["plural"])
        if kind is None or not is_global(kind):
            raise web.HTTPNotFound()
        return await self.one(request, Key(kind, "", request.match_info["name"]))

    async def one(self, request: web.Request, key: Key) -> web.Response:
        if request.method == "GET":
            return await self.get_one(key)
        if request.method not in ("PUT", "DELETE"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "DELETE"])
        if self.store.read_only:
            return error(405, "Method not allowed", f"resources are read-only: {self.store.read_only_reason}")
        if not await self.authorized(request):
            return error(401, "Unauthenticated", "writes need the admin token: Authorization: Bearer <token>")
        if request.method == "DELETE":
            return await self.delete(key)
        return await self.put(request, key)

    async def put(self, request: web.Request, key: Key) -> web.Response:
        title = "Could not process a resource"
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError as exc:
            return bad_request(f"invalid JSON: {exc}")
        if not isinstance(body, dict):
            return bad_request("the body must be a JSON object")
        if body.get("name") != key.name:
            return error(
                400, title, "Resource is not valid", [("name", "name from the URL has to be the same as in body")]
            )
        if body.get("type") != key.type:
            return error(
                400, title, "Resource is not valid", [("type", "type from the URL has to be the same as in body")]
            )
        if key.mesh and body.setdefault("mesh", key.mesh) != key.mesh:
            return error(
                400, title, "Resource is not valid", [("mesh", "mesh from the URL has to be the same as in body")]
            )
        body.pop("status", None)  # the control plane owns status (resource_endpoints.go: only SetSpec/SetMeta)
        item, problems = parse_body(body, self.zone)
        if item is None:
            return invalid(title, problems)
        if key.mesh and not await self.mesh_exists(key.mesh):
            reason = f"mesh of name {key.mesh} is not found"
            return error(400, "Could not create a resource", "Mesh is not found", [("mesh", reason)])
        problems = [p for p in validate([item], {key.mesh} if key.mesh else set()) if p.is_error]  # warnings pass
        if problems:
            return invalid(title, problems)
        wanted = record_of(item)
        try:
            try:
                current = await self.store.get(key)
            except NotFound:
                await self.store.create(wanted)
                status = 201
            else:
                await self.store.update(
                    Record(key, wanted.spec, wanted.labels, current.status, version=current.version)
                )
                status = 200
        except (AlreadyExists, Conflict) as exc:
            return error(409, "Conflict", str(exc))
        except MeshNotFound as exc:
            return error(400, "Could not create a resource", "Mesh is not found", [("mesh", str(exc))])
        if self.on_write is not None:
            await self.on_write(Change("INSERT" if status == 201 else "UPDATE", key))
        return web.json_response({}, status=status)

    async def delete(self, key: Key) -> web.Response:
        title = "Could not delete a resource"
        if key.type == "Mesh":
            attached = await self.store.list("Dataplane", key.name)
            if attached:
                # mesh_validator.go: ValidateDelete, unless KUMA_STORE_UNSAFE_DELETE.
                reason = "unable to delete mesh, there are still some dataplanes attached"
                return error(400, title, "Resource is not valid", [("mesh", reason)])
        try:
            await self.store.delete(key)
        except NotFound:
            return not_found("Could not retrieve a resource")
        if self.on_write is not None:
            await self.on_write(Change("DELETE", key))
        return web.json_response({})

    # -- inspection --------------------------------------------------------------------------------
    async def config(self, request: web.Request) -> web.Response:
        mesh, name = request.match_info["mesh"], request.match_info["name"]
        body = self.view.config(f"{mesh}.{name}")
        if body is None:
            return not_found("Could not retrieve a resource")
        return web.json_response({"xds": body})

    async def rules(self, request: web.Request) -> web.Response:
        mesh, name = request.match_info["mesh"], request.match_info["name"]
        if self.view.config(f"{mesh}.{name}") is None:
            return not_found("Could not retrieve a resource")
        # Policies (and so rules) are not implemented yet: Kuma's shape with nothing in it.
        return web.json_response(
            {"rules": [], "toResourceRules": [], "fromRules": [], "toRules": [], "proxyRule": None}
        )

    async def service_dataplanes(self, request: web.Request) -> web.Response:
        key = Key("MeshService", request.match_info["mesh"], request.match_info["name"])
        svc = self.service(key)
        catalog = self.view.catalog()
        if not isinstance(svc, m.MeshService) or catalog is None:
            return not_found("Could not retrieve a resource")
        dps = DataplaneIndex(catalog.meshes[key.mesh].dataplanes).selected(svc)
        items = [{"type": "Dataplane", "mesh": dp.mesh, "name": dp.name, "labels": dict(dp.labels)} for dp in dps]
        return web.json_response({"total": len(items), "items": items, "next": None})
