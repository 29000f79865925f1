"""The HTTP listener of a running control plane: Kuma's API plus ``/metrics``, on the ADS event loop."""

from __future__ import annotations

from aiohttp import web

from meshxds.api.server import Api, View
from meshxds.api.token import admin_token
from meshxds.control.metrics import CONTENT_TYPE, Metrics
from meshxds.control.store_service import StoreService
from meshxds.store.model import Store


async def start_api(service: StoreService, address: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the API for ``service`` on ``address:port`` (0 = any free port); returns the runner and port."""
    api = Api(service.store, await admin_token(service.store), service.zone, view=service, on_write=service.on_write)
    return await serve(api, service.metrics, address, port)


async def start_folder_api(
    store: Store, view: View, metrics: Metrics, address: str, port: int
) -> tuple[web.AppRunner, int]:
    """The read-only API of the folder mode (writes answer 405), with ``/metrics``."""
    return await serve(Api(store, await admin_token(store), view=view), metrics, address, port)


async def serve(api: Api, metrics: Metrics, address: str, port: int) -> tuple[web.AppRunner, int]:
    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.text(), headers={"Content-Type": CONTENT_TYPE})

    def extra(app: web.Application) -> None:
        app.router.add_get("/metrics", scrape)

    runner = web.AppRunner(api.app(extra), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
