"""A fake Envoy for protocol tests: a real grpc.aio client speaking raw ADS bytes.

Requests are built with envoy-data-plane messages (not with the server's own framing code),
responses decoded with them too. A background task reads the stream into a queue: never
``wait_for(call.read())``, whose timeout cancels the whole RPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc

from meshxds.snapshots.snapshot import Snapshot
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.server import SERVICE, AdsServer
from tests.support.discovery import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
    Node,
    Status,
)


@dataclass
class Response:
    """A decoded response: resource names in order, plus the raw message."""

    type_url: str
    nonce: str
    version: str
    names: list[str]
    versions: dict[str, str]
    removed: list[str]
    raw: Any


def _name(resource: Any) -> str:
    msg = resource.unpack()
    return str(getattr(msg, "cluster_name", "") or msg.name)


class AdsClient:
    """One ADS stream (SotW or Delta) to the server at ``port``."""

    def __init__(self, port: int, node_id: str | None, delta: bool = False) -> None:
        self.port = port
        self.node_id = node_id
        self.delta = delta
        self.responses: asyncio.Queue[Response | BaseException] = asyncio.Queue()
        self.sent_node = False
        self.last: dict[str, Response] = {}
        self.status: grpc.StatusCode | None = None
        self.details = ""

    async def __aenter__(self) -> AdsClient:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        method = "DeltaAggregatedResources" if self.delta else "StreamAggregatedResources"
        self.call = self.channel.stream_stream(f"/{SERVICE}/{method}")()
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.call.cancel()
        self.reader.cancel()
        await self.channel.close()

    async def _read(self) -> None:
        try:
            while True:
                data = await self.call.read()
                if data is grpc.aio.EOF:
                    break
                self.responses.put_nowait(self._decode(data))
        except grpc.aio.AioRpcError as exc:
            self.status, self.details = exc.code(), exc.details() or ""
            self.responses.put_nowait(exc)
        except asyncio.CancelledError:
            pass

    def _decode(self, data: bytes) -> Response:
        if self.delta:
            d = DeltaDiscoveryResponse.parse(data)
            names = [r.name for r in d.resources]
            versions = {r.name: r.version for r in d.resources}
            return Response(d.type_url, d.nonce, d.system_version_info, names, versions, list(d.removed_resources), d)
        m = DiscoveryResponse.parse(data)
        names = [_name(r) for r in m.resources]
        return Response(m.type_url, m.nonce, m.version_info, names, {}, [], m)

    def _node(self) -> Node | None:
        if self.sent_node or self.node_id is None:
            return None
        self.sent_node = True
        return Node(id=self.node_id, cluster="test")

    # -- sending ---------------------------------------------------------------------------------
    async def request(
        self,
        type_url: str,
        names: list[str] | None = None,
        nonce: str = "",
        version: str = "",
        error: str | None = None,
    ) -> None:
        """A SotW DiscoveryRequest (an ACK if ``nonce`` is set, a NACK if ``error`` too)."""
        req = DiscoveryRequest(
            version_info=version,
            node=self._node(),
            resource_names=names or [],
            type_url=type_url,
            response_nonce=nonce,
            error_detail=Status(code=3, message=error) if error is not None else None,
        )
        await self.call.write(bytes(req))

    async def ack(self, resp: Response, names: list[str] | None = None) -> None:
        await self.request(resp.type_url, names, resp.nonce, resp.version)

    async def delta_request(
        self,
        type_url: str,
        subscribe: list[str] | None = None,
        unsubscribe: list[str] | None = None,
        initial: dict[str, str] | None = None,
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        req = DeltaDiscoveryRequest(
            node=self._node(),
            type_url=type_url,
            resource_names_subscribe=subscribe or [],
            resource_names_unsubscribe=unsubscribe or [],
            initial_resource_versions=initial or {},
            response_nonce=nonce,
            error_detail=Status(code=3, message=error) if error is not None else None,
        )
        await self.call.write(bytes(req))

    async def delta_ack(self, resp: Response, error: str | None = None) -> None:
        await self.delta_request(resp.type_url, nonce=resp.nonce, error=error)

    # -- receiving -------------------------------------------------------------------------------
    async def expect(self, type_url: str | None = None, timeout: float = 3.0) -> Response:
        """The next response (of ``type_url`` if given: a different type fails the test)."""
        try:
            item = await asyncio.wait_for(self.responses.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no response within {timeout}s (expected {type_url})") from None
        if isinstance(item, BaseException):
            raise AssertionError(f"stream ended: {self.status} {self.details}")
        if type_url is not None:
            assert item.type_url == type_url, f"expected {type_url}, got {item.type_url} {item.names}"
        self.last[item.type_url] = item
        return item

    async def expect_nothing(self, within: float = 0.3) -> None:
        try:
            item = await asyncio.wait_for(self.responses.get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected response: {item}")

    async def expect_error(self, timeout: float = 3.0) -> tuple[grpc.StatusCode | None, str]:
        item = await asyncio.wait_for(self.responses.get(), timeout)
        assert isinstance(item, BaseException), f"expected the stream to fail, got {item}"
        return self.status, self.details


class Serving:
    """An ``AdsServer`` on a free port in the current loop, with a cache holding ``snapshots``."""

    def __init__(self, *snapshots: Snapshot) -> None:
        self.cache = SnapshotCache()
        for snap in snapshots:
            self.cache.set(snap.node_id, snap)
        self.server = AdsServer(self.cache)
        self.port = 0

    async def __aenter__(self) -> Serving:
        self.port = await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(None)

    def client(self, node_id: str | None, delta: bool = False) -> AdsClient:
        return AdsClient(self.port, node_id, delta)

    def set(self, snap: Snapshot) -> bool:
        return self.cache.set(snap.node_id, snap)


def run(scenario: Callable[[], Coroutine[Any, Any, None]], timeout: float = 20.0) -> None:
    """Run an async test scenario with an overall deadline."""

    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout)

    asyncio.run(bounded())


async def until(check: Callable[[], object], timeout: float = 3.0, what: str = "") -> None:
    """Poll ``check`` on the loop (lets the server process what the client wrote) until truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.005)


def answered(s: Serving, resp: Response, node_id: str) -> Callable[[], bool]:
    """True once the server has processed the ACK/NACK of ``resp``."""
    return lambda: s.cache.node_status(node_id).type(resp.type_url).answered_nonce == resp.nonce


def all_answered(s: Serving) -> Callable[[], bool]:
    """True once the server has processed an ACK/NACK for every response it sent."""
    return lambda: all(not st.ledger.in_flight for stream in s.server.streams for st in stream.types.values())
