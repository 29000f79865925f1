"""A small HTTP debug endpoint on the server's event loop (so it reads state without locks).

Large answers are rendered in a worker thread (and a node's snapshot JSON is kept per snapshot), so
a debug request never stalls the streams; connections are capped and idle ones time out.

``GET /healthz``          → ``{"status": "alive"}`` while the process runs
``GET /readyz``           → 200 ready/degraded (with reasons) or 503 not ready, JSON
``GET /snapshots``        → every node: snapshot versions, sent/ACKed per type, last NACK, connected
``GET /snapshots/<node>`` → that node's snapshot, the same JSON as ``meshxds dump``
``GET /meshservices``     → MeshServices with their status (``dataplaneProxies.connected`` live)
``GET /traffic``          → per node and cluster, requests/connections/bytes per second from Envoy's stats sink
``GET /metrics``          → the same as Prometheus gauges
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from meshxds.snapshots.dump import to_json
from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.cache import SnapshotCache

log = logging.getLogger("meshxds.debug")


Readiness = Callable[[], tuple[int, dict[str, Any]]]
MAX_CONNECTIONS = 64  # more at once are answered 503 and closed, so idle clients cannot use up the fds
REQUEST_TIMEOUT = 5.0  # seconds to send the request line and headers
MAX_HEADER_LINES = 100
RENDERED_KEPT = 32  # snapshot JSON renderings kept (per snapshot object: a new snapshot renders again)


class DebugServer:
    """HTTP/1.1, one request per connection, GET only."""

    def __init__(
        self,
        cache: SnapshotCache,
        meshservices: Callable[[], Awaitable[str]] | None = None,
        traffic: Callable[[], Any] | None = None,
        metrics: Callable[[], str] | None = None,
        readiness: Readiness | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.cache = cache
        self.meshservices = meshservices
        self.traffic = traffic
        self.metrics = metrics
        self.readiness = readiness
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.port = 0
        self.open = 0
        self.refused = 0
        self._rendered: OrderedDict[str, tuple[Snapshot, str]] = OrderedDict()
        self._server: asyncio.Server | None = None

    async def start(self, address: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, address, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("debug endpoint on http://%s:%d/snapshots", address, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def route(self, method: str, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for one request; slow renderings run in a worker thread."""
        if method != "GET":
            return 405, "text/plain", "only GET\n"
        path = urllib.parse.urlsplit(path).path.rstrip("/") or "/"
        if path == "/healthz":
            return 200, "application/json", _json({"status": "alive"})
        if path == "/readyz":
            status, body = self.readiness() if self.readiness else (200, {"status": "ready"})
            return status, "application/json", _json(body)
        if path == "/snapshots":
            return 200, "application/json", await asyncio.to_thread(_json, self.cache.debug_json())
        if path.startswith("/snapshots/"):
            node_id = urllib.parse.unquote(path.removeprefix("/snapshots/"))
            snapshot = self.cache.get(node_id)
            if snapshot is None:
                known = self.cache.nodes()
                return 404, "application/json", _json({"error": f"unknown node {node_id[:200]!r}", "nodes": known})
            return 200, "application/json", await self._snapshot_json(node_id, snapshot)
        if path == "/meshservices" and self.meshservices is not None:
            return 200, "application/yaml", await self.meshservices()
        if path == "/traffic" and self.traffic is not None:
            return 200, "application/json", _json(self.traffic())
        if path == "/metrics" and self.metrics is not None:
            return 200, "text/plain; version=0.0.4", self.metrics()
        return (
            404,
            "text/plain",
            "try /snapshots, /snapshots/<mesh>.<name>, /meshservices, /traffic, /metrics, /healthz or /readyz\n",
        )

    async def _snapshot_json(self, node_id: str, snapshot: Snapshot) -> str:
        """Rendered in a worker thread, once per snapshot: repeated requests cost nothing."""
        kept = self._rendered.get(node_id)
        if kept is not None and kept[0] is snapshot:
            self._rendered.move_to_end(node_id)
            return kept[1]
        text = await asyncio.to_thread(to_json, snapshot)
        self._rendered[node_id] = (snapshot, text)
        while len(self._rendered) > RENDERED_KEPT:
            self._rendered.popitem(last=False)
        return text

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            if self.open > self.max_connections:
                self.refused += 1
                await self._respond(writer, 503, "text/plain", "too many connections\n")
                return
            try:
                request_line = await asyncio.wait_for(self._read_head(reader), self.request_timeout)
            except TimeoutError:
                await self._respond(writer, 408, "text/plain", "request timeout\n")
                return
            if len(request_line) < 2:
                return
            try:
                status, ctype, body = await self.route(request_line[0], request_line[1])
            except Exception as exc:  # a debug page must never take the server down
                log.exception("debug endpoint failed")
                status, ctype, body = 500, "text/plain", f"{type(exc).__name__}: {exc}\n"
            await self._respond(writer, status, ctype, body)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self.open -= 1
            writer.close()

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> list[str]:
        request_line = (await reader.readline()).decode("latin-1").split()
        for _ in range(MAX_HEADER_LINES):
            if not (await reader.readline()).strip():
                break
        return request_line

    async def _respond(self, writer: asyncio.StreamWriter, status: int, ctype: str, body: str) -> None:
        data = body.encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: {ctype}\r\n"
            f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await asyncio.wait_for(writer.drain(), self.request_timeout * 6)


_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
