"""A small HTTP debug endpoint on the server's event loop (so it reads state without locks).

``GET /healthz``          → ``ok``
``GET /snapshots``        → every node: snapshot versions, sent/ACKed per type, last NACK, connected
``GET /snapshots/<node>`` → that node's snapshot, the same JSON as ``meshxds dump``
``GET /meshservices``     → MeshServices with their status (``dataplaneProxies.connected`` live)
``GET /traffic``          → per node and cluster, requests/connections/bytes per second from Envoy's stats sink
``GET /metrics``          → the same as Prometheus gauges
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from meshxds.snapshots.dump import to_json
from meshxds.xds.cache import SnapshotCache

log = logging.getLogger("meshxds.debug")


class DebugServer:
    """HTTP/1.1, one request per connection, GET only."""

    def __init__(
        self,
        cache: SnapshotCache,
        meshservices: Callable[[], str] | None = None,
        traffic: Callable[[], Any] | None = None,
        metrics: Callable[[], str] | None = None,
    ) -> None:
        self.cache = cache
        self.meshservices = meshservices
        self.traffic = traffic
        self.metrics = metrics
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, address: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, address, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("debug endpoint on http://%s:%d/snapshots", address, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def route(self, method: str, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for one request; slow renderings run in a worker thread."""
        if method != "GET":
            return 405, "text/plain", "only GET\n"
        path = urllib.parse.urlsplit(path).path.rstrip("/") or "/"
        if path == "/healthz":
            return 200, "text/plain", "ok\n"
        if path == "/snapshots":
            return 200, "application/json", _json(self.cache.debug_json())
        if path.startswith("/snapshots/"):
            node_id = urllib.parse.unquote(path.removeprefix("/snapshots/"))
            snapshot = self.cache.get(node_id)
            if snapshot is None:
                known = self.cache.nodes()
                return 404, "application/json", _json({"error": f"unknown node {node_id!r}", "nodes": known})
            return 200, "application/json", await asyncio.to_thread(to_json, snapshot)  # ~ms per resource
        if path == "/meshservices" and self.meshservices is not None:
            return 200, "application/yaml", self.meshservices()
        if path == "/traffic" and self.traffic is not None:
            return 200, "application/json", _json(self.traffic())
        if path == "/metrics" and self.metrics is not None:
            return 200, "text/plain; version=0.0.4", self.metrics()
        return (
            404,
            "text/plain",
            "try /snapshots, /snapshots/<mesh>.<name>, /meshservices, /traffic, /metrics or /healthz\n",
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            while (await reader.readline()).strip():
                pass  # headers: not needed
            if len(request_line) < 2:
                return
            try:
                status, ctype, body = await self.route(request_line[0], request_line[1])
            except Exception as exc:  # a debug page must never take the server down
                log.exception("debug endpoint failed")
                status, ctype, body = 500, "text/plain", f"{type(exc).__name__}: {exc}\n"
            data = body.encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: {ctype}\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + data)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
