"""The transport floor of the initial sync: what grpc.aio alone costs to move one full configuration
to N streams, with no xDS logic on either side.

``python -m bench.floor --streams 3000``: a trivial grpc.aio server in this process answers each stream's
first request with prebuilt messages of the sizes one proxy's CDS, EDS, LDS and RDS responses have (raw
bytes, the same objects for every stream), each after the client's reply to the one before, as an ADS
stream's ACKs go. The clients run in a separate process (``--client``), one HTTP/2 connection per stream
and at most ``--window`` streams syncing at once, as ``bench.clients`` does; they read raw bytes without
parsing. The figure is the time from starting the client process until every stream has received every
message: the best ``bench.push``'s initial sync could be on this machine with this transport.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from bench.push import client_process, percentile
from meshxds.snapshots.snapshot import TYPE_ORDER, Snapshot
from meshxds.xds.wire import sotw_response

METHOD = "/bench.Floor/Stream"
# One bench proxy's full configuration (1,000 services x 3, all-to-all): CDS, EDS, LDS, RDS response bytes.
SIZES = (283_000, 1_280_000, 519_000, 165_000)
REQUEST = b"\x22\x10floor-request-00"  # a small message standing for a request
PUSH = bytes(1_500)  # one changed ClusterLoadAssignment's response
ACK = bytes(30_000)  # an ACK repeating a subscription to 1,000 CLAs
WINDOW = 250  # streams syncing at once (bench.clients uses the same)


@dataclass(frozen=True)
class FloorResult:
    streams: int
    bytes_per_stream: int
    sync_s: float  # client process start -> every stream holds every message
    server_cpu_s: float  # this process's CPU time over that span
    client_cpu_s: float  # the client process's CPU time, as it reports it
    failures: int  # client streams that failed and were retried
    push_p50_s: float  # then one small message to every stream at once: until the server has its reply, p50...
    push_p99_s: float  # ...and p99


def sizes_of(snapshot: Snapshot) -> tuple[int, ...]:
    """The byte sizes of one proxy's full-state response per type (what the first sync sends it)."""
    return tuple(
        len(sotw_response(t, "v", (e.any for e in snapshot.get(t).values()), "nonce"))
        for t in TYPE_ORDER
        if snapshot.get(t)
    )


class _Push:
    """The push phase: once ``go`` is set every stream sends one small message; ``acked`` collects the
    times (from ``go``) at which the replies arrive."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.at = 0.0
        self.acked: list[float] = []


async def _serve_stream(requests: AsyncIterator[bytes], messages: tuple[bytes, ...], push: _Push, context: Any) -> None:
    it = requests.__aiter__()
    await it.__anext__()  # the first request
    for message in messages:
        await context.write(message)
        await it.__anext__()  # the reply, as an ACK
    await push.go.wait()
    await context.write(PUSH)
    await it.__anext__()
    push.acked.append(time.monotonic() - push.at)
    async for _ in it:  # until the client closes
        pass


async def run(
    streams: int, sizes: tuple[int, ...] = SIZES, window: int = WINDOW, timeout: float = 600.0
) -> FloorResult:
    messages = tuple(bytes(n) for n in sizes)
    push = _Push()

    async def handler(requests: AsyncIterator[bytes], context: Any) -> None:
        with contextlib.suppress(StopAsyncIteration):  # the client went away
            await _serve_stream(requests, messages, push, context)

    server = grpc.aio.server(options=[("grpc.max_send_message_length", 256 << 20), ("grpc.so_reuseport", 0)])
    rpc = grpc.stream_stream_rpc_method_handler(handler)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", {"Stream": rpc}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cpu = time.process_time()
    started = time.monotonic()
    args = ["--client", "--port", str(port), "--streams", str(streams), "--messages", str(len(sizes))]
    try:
        async with client_process("bench.floor", *args, "--window", str(window), timeout=timeout) as hello:
            sync_s = time.monotonic() - started
            server_cpu = time.process_time() - cpu
            await asyncio.sleep(0.5)
            push.at = time.monotonic()
            push.go.set()
            while len(push.acked) < streams and time.monotonic() - push.at < timeout:
                await asyncio.sleep(0.01)
    finally:
        await server.stop(0)
    return FloorResult(
        streams,
        sum(sizes),
        sync_s,
        server_cpu,
        hello["cpu_s"],
        hello["failures"],
        percentile(push.acked, 50),
        percentile(push.acked, 99),
    )


async def _client_call(channel: Any, count: int, synced: asyncio.Event) -> None:
    call = channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)()
    await call.write(REQUEST)
    received = 0
    while True:
        data = await call.read()
        if data is grpc.aio.EOF:
            raise RuntimeError("server ended the stream")
        await call.write(ACK if received else REQUEST)
        received += 1
        if received == count:
            synced.set()


async def client_main(port: int, streams: int, count: int, window: int) -> None:
    cpu = time.process_time()
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 256 << 20)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(streams)]
    slots = asyncio.Semaphore(window)
    failures = 0
    tasks: list[asyncio.Task[None]] = []

    async def call(channel: Any, synced: asyncio.Event) -> None:
        nonlocal failures
        while True:
            try:
                return await _client_call(channel, count, synced)
            except (grpc.RpcError, RuntimeError):
                failures += 1
                await asyncio.sleep(0.5)

    async def one(channel: Any) -> None:
        synced = asyncio.Event()
        async with slots:
            tasks.append(asyncio.create_task(call(channel, synced)))
            await synced.wait()

    await asyncio.gather(*(one(ch) for ch in channels))
    print(json.dumps({"cpu_s": time.process_time() - cpu, "failures": failures}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()
    for ch in channels:
        await ch.close()


def describe(r: FloorResult) -> str:
    return (
        f"{r.streams} streams x {r.bytes_per_stream / 1e6:.2f} MB in {r.sync_s:.1f} s (server CPU "
        f"{r.server_cpu_s:.1f} s, client CPU {r.client_cpu_s:.1f} s, {r.failures} retries); one small message "
        f"to every stream: reply p50 {r.push_p50_s * 1000:.0f} ms, p99 {r.push_p99_s * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--streams", type=int, default=3000)
    parser.add_argument("--window", type=int, default=WINDOW, help="streams syncing at once")
    parser.add_argument("--client", action="store_true", help="(internal) run the client side")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--messages", type=int, default=len(SIZES))
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main(args.port, args.streams, args.messages, args.window))
        return
    print("transport floor:", describe(asyncio.run(run(args.streams, window=args.window))))


def run_for(snapshots: Mapping[str, Snapshot], nodes: list[str]) -> FloorResult:
    """The floor for ``nodes`` streams, each moving as many bytes as the first node's full configuration."""
    return asyncio.run(run(len(nodes), sizes_of(snapshots[nodes[0]])))


if __name__ == "__main__":
    main()
