"""What one client can cost the ADS server: bounded, answered with a short status, logged once.

Each test is a failure that was reproduced against the server (a stream that floods requests and
never reads, a 4 MB node id, invalid UTF-8, a silent connection, a shutdown with open streams).
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from bench.soak import FreezingProxy
from meshxds.snapshots.snapshot import CLUSTER
from meshxds.xds.server import _WAKE, SERVICE, Inbox, Limits
from meshxds.xds.wire import MAX_NAMES, MAX_NODE_ID
from tests.support import xdsres as r
from tests.support.adsclient import Serving, run, until
from tests.support.discovery import DiscoveryRequest, Node

NODE = "default.web-1"


def raw_request(node_id: bytes, names: int = 0) -> bytes:
    """A SotW DiscoveryRequest whose node id is raw bytes (field 2 → Node field 1)."""
    node = b"\x0a" + _varint(len(node_id)) + node_id
    body = b"\x12" + _varint(len(node)) + node
    body += b"".join(b"\x1a" + _varint(len(n)) + n for n in (f"n{i}".encode() for i in range(names)))
    type_url = CLUSTER.encode()
    return body + b"\x22" + _varint(len(type_url)) + type_url


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def _status_of(s: Serving, message: bytes) -> tuple[grpc.StatusCode | None, str]:
    async with s.client(None) as c:
        await c.call.write(message)
        return await c.expect_error()


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (raw_request(b"default.\xff\xfe"), "invalid UTF-8"),
        (raw_request(b"x" * (4 << 20)), f"limit is {MAX_NODE_ID}"),
        (raw_request(NODE.encode(), names=MAX_NAMES + 1), f"more than {MAX_NAMES} resource names"),
    ],
    ids=["invalid-utf8", "huge-node-id", "too-many-names"],
)
def test_bad_first_requests_are_invalid_argument_with_a_short_message(message: bytes, needle: str) -> None:
    async def scenario() -> None:
        limits = Limits(max_message=8 << 20)
        async with Serving(r.two_clusters(NODE)) as s:
            await s.server.stop(None)
            s.server.limits, s.server.closing = limits, False
            await s.server.start("127.0.0.1", s.port)
            code, details = await _status_of(s, message)
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert needle in details and len(details) < 300

    run(scenario)


def test_a_message_over_the_size_limit_is_refused_by_grpc() -> None:
    async def scenario() -> None:
        async with Serving(r.two_clusters(NODE)) as s:
            code, _ = await _status_of(s, raw_request(b"x" * (5 << 20)))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED  # the default limit is 4 MB

    run(scenario)


def test_a_stream_that_never_speaks_is_closed() -> None:
    async def scenario() -> None:
        async with Serving(r.two_clusters(NODE)) as s:
            s.server.limits = Limits(first_request_timeout=0.2)
            async with s.client(NODE) as c:
                code, details = await c.expect_error(timeout=5.0)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "no request" in details
            assert s.server.dropped == 1

    run(scenario)


def test_requests_wait_in_a_bounded_inbox() -> None:
    """Before: the per-stream request queue had no bound (159 MB → 2.3 GB in 30 s for one stream that
    sent and never read). Now the reader waits for a free slot; gRPC then stops granting the client
    HTTP/2 window, so its sends block. Wakeups and end-of-stream always go in."""

    async def scenario() -> None:
        inbox = Inbox(2)
        await inbox.put_request(b"1")
        await inbox.put_request(b"2")
        third = asyncio.create_task(inbox.put_request(b"3"))
        inbox.put_nowait(_WAKE)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # full: the reader is held
        assert await inbox.get() == b"1"
        await asyncio.wait_for(third, 1.0)  # a slot freed: it goes in
        assert [inbox.get_nowait() for _ in range(3)] == [b"2", _WAKE, b"3"]

    run(scenario)


def test_a_client_that_does_not_read_its_responses_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    big = r.snapshot(NODE, *[r.cluster(f"c{i:04d}-{'x' * 5000}") for i in range(4000)])  # a 20 MB CDS answer

    async def scenario() -> None:
        async with Serving(big) as s:
            s.server.limits = Limits(write_timeout=0.5)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{s.port}")
            call = channel.stream_stream(f"/{SERVICE}/StreamAggregatedResources")()
            await call.write(bytes(DiscoveryRequest(node=Node(id=NODE), type_url=CLUSTER)))  # and never reads
            await until(lambda: s.server.dropped == 1, 20.0, "the stream to be dropped")
            await until(lambda: not s.server.streams and not s.cache.connected(), 5.0, "the stream to be gone")
            call.cancel()
            await channel.close()

    with caplog.at_level(logging.WARNING):
        run(scenario, timeout=40.0)
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert lines == [f"{NODE}: not reading its responses for 0.5 s; closing the stream"]  # and no traceback


def test_stop_tells_connected_streams_to_reconnect() -> None:
    async def scenario() -> None:
        async with Serving(r.two_clusters(NODE)) as s, s.client(NODE) as c:
            await c.request(CLUSTER)
            await c.expect(CLUSTER)
            await until(lambda: len(s.server.streams) == 1)
            await s.server.stop(2.0)
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.UNAVAILABLE and "reconnect" in details

    run(scenario)


def test_keepalive_pings_close_a_frozen_connection() -> None:
    """A peer that stops answering (half-open TCP) stayed "connected" for 26+ minutes. The pings find it
    after keepalive_time + keepalive_timeout (grpc times a ping out after its ping_timeout_ms, 60 s by
    default, which the limits set too)."""

    async def scenario() -> None:
        async with Serving(r.two_clusters(NODE)) as s:
            await s.server.stop(None)
            s.server.limits, s.server.closing = Limits(keepalive_time=1.0, keepalive_timeout=1.0), False
            await s.server.start("127.0.0.1", s.port)
            proxy = FreezingProxy(s.port)
            proxy.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}")
            call = channel.stream_stream(f"/{SERVICE}/StreamAggregatedResources")()
            await call.write(bytes(DiscoveryRequest(node=Node(id=NODE), type_url=CLUSTER)))
            await call.read()
            proxy.frozen = True
            await until(lambda: not s.server.streams, 15.0, "the frozen stream to be closed")
            call.cancel()
            await channel.close()

    run(scenario, timeout=30.0)
    options = dict(Limits().grpc_options())
    assert options["grpc.keepalive_time_ms"] + options["grpc.http2.ping_timeout_ms"] <= 60_000
