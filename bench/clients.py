"""Many ADS client streams in one process, speaking SotW like Envoy does, and ACKing everything.

Run as ``python -m bench.clients --port P --streams-file F`` (the benchmark starts it as a separate
process so its CPU is not the server's). Each stream subscribes to CDS and LDS (wildcard), then to
the CLAs of the EDS clusters it got and the RDS names its listeners use, ACKs every response, and
keeps going until stdin closes. Prints one JSON line ``{"synced": n}`` once every stream holds a full
configuration, so the benchmark knows when to push.

Parsing is as cheap as Envoy's would be for what a stream needs: thousands of streams get the same
resources, so a response's layout is memoised per version_info (``Layout``: only the first copy is walked,
later ones read type_url and nonce from the tail), and the CDS/LDS-derived EDS/RDS names per (type,
version). Every response is still ACKed with its own nonce, and every stream subscribes to the names
it derived. At most ``--window`` streams sync at once; the client must not be the bottleneck it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import time
from collections.abc import Callable
from itertools import chain
from typing import Any, cast

import grpc

from meshxds.codec.encode import length_delimited
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshxds.xds.wire import WireError, fields, read_varint

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
EDS_TYPE = 3
HCM = b"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


_NAMES: dict[tuple[str, ...], bytes] = {}


def names_field(names: list[str]) -> bytes:
    """The encoded resource_names (3) of a subscription; memoised, many streams subscribe to the same names."""
    key = tuple(names)
    block = _NAMES.get(key)
    if block is None:
        block = _NAMES[key] = b"".join(length_delimited(3, n.encode()) for n in names)
    return block


def request(
    type_url: str, names: list[str] | bytes, version: str = "", nonce: str = "", node: str | None = None
) -> bytes:
    """DiscoveryRequest: version_info 1, node 2 (id = 1), resource_names 3 (``names``, see ``names_field``),
    type_url 4, response_nonce 5."""
    out = length_delimited(1, version.encode()) if version else b""
    if node is not None:
        out += length_delimited(2, length_delimited(1, node.encode()))
    out += names if isinstance(names, bytes) else names_field(names)
    out += length_delimited(4, type_url.encode())
    if nonce:
        out += length_delimited(5, nonce.encode())
    return out


class Layout:
    """Where a response's resources end, memoised per version_info: every stream that gets a version
    gets the same resources block, so only the first copy is walked field by field and later ones read
    their type_url and nonce from the tail in O(1), checked against the memo."""

    def __init__(self) -> None:
        self.by_version: dict[bytes, tuple[int, bytes]] = {}

    def parse(self, data: bytes) -> tuple[str, str, str, list[bytes] | None]:
        """(type_url, version_info, nonce, resource Any values) of a DiscoveryResponse; the resources are
        None when the layout was known (whoever needs them walks the response with ``walk``)."""
        version = b""
        pos = 0
        if data[:1] == b"\x0a":  # version_info first, as the server writes it
            size, pos = read_varint(data, 1)
            version = data[pos : pos + size]
            pos += size
        hit = self.by_version.get(version) if version else None
        if hit is not None:
            # The tail must be exactly type_url (4) then nonce (5) then control_plane (6), to the end.
            block_end, type_field = hit
            tail = block_end + len(type_field)
            if data[block_end:tail] == type_field and data[tail : tail + 1] == b"\x2a":
                size, pos = read_varint(data, tail + 1)
                if data[pos + size : pos + size + 1] == b"\x32" and len(data) == pos + size + 2 + data[pos + size + 1]:
                    return type_field[2:].decode(), version.decode(), data[pos : pos + size].decode(), None
        type_url, nonce, anys, block_end = walk(data)
        if version and len(type_url) < 126:
            self.by_version[version] = (block_end, length_delimited(4, type_url.encode()))
        return type_url, version.decode(), nonce, anys


def response_header(data: bytes) -> tuple[str, str, str, list[bytes]]:
    """(type_url, version_info, nonce, resource Any values) of a DiscoveryResponse."""
    type_url, nonce, anys, _ = walk(data)
    version = ""
    if data[:1] == b"\x0a":
        size, pos = read_varint(data, 1)
        version = data[pos : pos + size].decode()
    return type_url, version, nonce, anys


def walk(data: bytes) -> tuple[str, str, list[bytes], int]:
    """Every top-level field: (type_url, nonce, resource Anys, offset just past the last resource).

    The hot loop of the client: one-byte keys (fields 1-15) and lengths up to two bytes are read inline."""
    type_url = nonce = ""
    anys: list[bytes] = []
    add = anys.append
    pos, end, block_end = 0, len(data), 0
    while pos < end:
        key = data[pos]
        if key > 0x7F:
            raise WireError(f"unexpected field key at byte {pos}")
        if key & 7 == 0:
            _, pos = read_varint(data, pos + 1)
            continue
        if key & 7 != 2:
            raise WireError(f"unexpected wire type {key & 7} in a DiscoveryResponse")
        size = data[pos + 1]
        if size < 0x80:
            pos += 2
        elif data[pos + 2] < 0x80:
            size = (size & 0x7F) | (data[pos + 2] << 7)
            pos += 3
        else:
            size, pos = read_varint(data, pos + 1)
        if key == 0x12:
            add(data[pos : pos + size])
            block_end = pos + size
        elif key == 0x22:
            type_url = data[pos : pos + size].decode()
        elif key == 0x2A:
            nonce = data[pos : pos + size].decode()
        pos += size
    if pos != end:
        raise WireError("truncated DiscoveryResponse")
    return type_url, nonce, anys, block_end


def children(data: bytes, number: int) -> list[bytes]:
    """The payloads of length-delimited field ``number``."""
    return [v for n, v in fields(data) if n == number and isinstance(v, bytes)]


def _any_value(any_bytes: bytes) -> bytes:
    return b"".join(children(any_bytes, 2))


def eds_names_of(any_bytes: bytes) -> tuple[str, ...]:
    """The CLA name Envoy would request for one Cluster: an EDS cluster's service_name, else its name."""
    name, service, eds = "", "", False
    for number, value in fields(_any_value(any_bytes)):
        if number == 1 and isinstance(value, bytes):
            name = value.decode()
        elif number == 2 and value == EDS_TYPE:
            eds = True
        elif number == 3 and isinstance(value, bytes):
            service = b"".join(children(value, 2)).decode()
    return (service or name,) if eds else ()


def route_names_of(any_bytes: bytes) -> tuple[str, ...]:
    """RDS names of one Listener's HttpConnectionManagers: filter_chains 3 > filters 3 > typed_config 4 >
    rds 3 > name 2."""
    names: list[str] = []
    for filter_chain in children(_any_value(any_bytes), 3):
        for flt in children(filter_chain, 3):
            for typed in children(flt, 4):
                if b"".join(children(typed, 1)) == HCM:
                    for rds in children(_any_value(typed), 3):
                        names.extend(v.decode() for v in children(rds, 2))
    return tuple(names)


class Derive:
    """The names one resource makes Envoy subscribe to, memoised per resource (its Any bytes): proxies
    get mostly the same resources, so each distinct one is decoded once."""

    def __init__(self, of_one: Callable[[bytes], tuple[str, ...]]) -> None:
        self.of_one = of_one
        self.memo: dict[bytes, tuple[str, ...]] = {}

    def __call__(self, anys: list[bytes]) -> list[str]:
        memo = self.memo
        found = [memo.get(a) for a in anys]
        for i, got in enumerate(found):
            if got is None:
                found[i] = memo[anys[i]] = self.of_one(anys[i])
        return sorted(set(chain.from_iterable(cast(list[tuple[str, ...]], found))))


def eds_names(anys: list[bytes]) -> list[str]:
    """The CLA names Envoy would request for these Clusters."""
    return sorted({n for a in anys for n in eds_names_of(a)})


def route_names(anys: list[bytes]) -> list[str]:
    """The RDS names Envoy would request for these Listeners."""
    return sorted({n for a in anys for n in route_names_of(a)})


class Client:
    """One simulated Envoy: one stream, SotW, ACKs everything; reconnects (like Envoy) if the stream fails."""

    def __init__(self, node_id: str, channel: Any, memo: dict[tuple[str, str], list[str]], layout: Layout) -> None:
        self.node_id = node_id
        self.channel = channel
        self.memo = memo
        self.layout = layout
        self.subscribed: dict[str, list[str]] = {}
        self.blocks: dict[str, bytes] = {}  # the encoded resource_names of each subscription
        self.got: set[str] = set()
        self.failures: list[str] = []
        self.ready = asyncio.Event()  # set once the stream holds a full configuration, every response ACKed

    async def run(self) -> None:
        while True:
            self.subscribed = {CLUSTER: [], LISTENER: []}
            self.blocks = {}
            self.got = set()
            call = self.channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)()
            try:
                await call.write(request(CLUSTER, b"", node=self.node_id))
                await call.write(request(LISTENER, b""))
                while True:
                    data = await call.read()
                    if data is grpc.aio.EOF:
                        raise RuntimeError("server ended the stream")
                    await self.on_response(call, data)
            except (grpc.RpcError, RuntimeError) as exc:
                self.failures.append(" ".join(str(exc).split())[:300])
                await asyncio.sleep(1.0)

    async def on_response(self, call: Any, data: bytes) -> None:
        type_url, version, nonce, anys = self.layout.parse(data)
        self.got.add(type_url)
        await call.write(request(type_url, self.blocks.get(type_url, b""), version, nonce))
        follow = FOLLOW.get(type_url)
        if follow is not None:
            child, derive = follow
            key = (type_url, version)
            names = self.memo.get(key)
            if names is None:
                names = self.memo[key] = derive(walk(data)[2] if anys is None else anys)
            if names != self.subscribed.get(child):
                self.subscribed[child] = names
                self.blocks[child] = names_field(names)
                await call.write(request(child, self.blocks[child]))
        if not self.ready.is_set() and self.synced:
            self.ready.set()

    @property
    def synced(self) -> bool:
        wanted = {CLUSTER, LISTENER} | {t for t in (ENDPOINT, ROUTE) if self.subscribed.get(t)}
        return wanted <= self.got


FOLLOW = {CLUSTER: (ENDPOINT, Derive(eds_names_of)), LISTENER: (ROUTE, Derive(route_names_of))}


async def main_async(port: int, node_ids: list[str], per_channel: int, window: int, profile: str | None = None) -> None:
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 256 << 20)]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options)
        for _ in range((len(node_ids) + per_channel - 1) // per_channel)
    ]
    memo: dict[tuple[str, str], list[str]] = {}
    layout = Layout()
    clients = [Client(n, channels[i // per_channel], memo, layout) for i, n in enumerate(node_ids)]
    tasks = []
    # At most ``window`` streams sync at once (a new one starts as soon as one holds its configuration),
    # so no handshake waits behind thousands of syncs and grpc never buffers thousands of full configurations.
    slots = asyncio.Semaphore(window)

    async def start(client: Client) -> None:
        async with slots:
            tasks.append(asyncio.create_task(client.run()))
            await client.ready.wait()

    await asyncio.gather(*(start(c) for c in clients))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    failures = [f for c in clients for f in c.failures]
    hello = {
        "synced": len(clients),
        "eds_streams": sum(1 for c in clients if c.subscribed.get(ENDPOINT)),
        "rds_streams": sum(1 for c in clients if c.subscribed.get(ROUTE)),
        "reconnects": len(failures),
        "first_failure": failures[0] if failures else "",
        "cpu_s": time.process_time(),
    }
    print(json.dumps(hello), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the benchmark closes stdin
    for t in tasks:
        t.cancel()
    for ch in channels:
        await ch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nodes-file", required=True, help="one node id per line")
    parser.add_argument("--streams-per-connection", type=int, default=1)
    parser.add_argument("--window", type=int, default=250, help="streams syncing at once")
    parser.add_argument("--profile", help="cProfile this process until it syncs; write the stats here")
    args = parser.parse_args()
    with open(args.nodes_file) as f:
        nodes = [line.strip() for line in f if line.strip()]
    asyncio.run(main_async(args.port, nodes, args.streams_per_connection, args.window, args.profile))


if __name__ == "__main__":
    main()
