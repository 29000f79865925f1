"""Many ADS client streams in one process, speaking SotW like Envoy does, and ACKing everything.

Run as ``python -m bench.clients --port P --streams-file F`` (the benchmark starts it as a separate
process so its CPU is not the server's). Each stream subscribes to CDS and LDS (wildcard), then to
the CLAs of the EDS clusters it got and the RDS names its listeners use, ACKs every response, and
keeps going until stdin closes. Prints one JSON line ``{"synced": n}`` once every stream holds a full
configuration, so the benchmark knows when to push.

Parsing is field-skipping and memoised per (type, version): thousands of streams get the same
responses, and the client must not be the bottleneck it is measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import grpc

from meshxds.codec.encode import length_delimited
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshxds.xds.wire import fields

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
EDS_TYPE = 3
HCM = b"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


_NAMES: dict[tuple[str, ...], bytes] = {}


def names_field(names: list[str]) -> bytes:
    """The encoded resource_names (3) of a subscription; memoised, every ACK of every stream repeats it."""
    key = tuple(names)
    block = _NAMES.get(key)
    if block is None:
        block = _NAMES[key] = b"".join(length_delimited(3, n.encode()) for n in names)
    return block


def request(type_url: str, names: list[str], version: str = "", nonce: str = "", node: str | None = None) -> bytes:
    """DiscoveryRequest: version_info 1, node 2 (id = 1), resource_names 3, type_url 4, response_nonce 5."""
    out = length_delimited(1, version.encode()) if version else b""
    if node is not None:
        out += length_delimited(2, length_delimited(1, node.encode()))
    out += names_field(names)
    out += length_delimited(4, type_url.encode())
    if nonce:
        out += length_delimited(5, nonce.encode())
    return out


def response_header(data: bytes) -> tuple[str, str, str, list[bytes]]:
    """(type_url, version_info, nonce, resource Any values) of a DiscoveryResponse."""
    type_url = version = nonce = ""
    anys: list[bytes] = []
    for number, value in fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            version = value.decode()
        elif number == 2:
            anys.append(value)
        elif number == 4:
            type_url = value.decode()
        elif number == 5:
            nonce = value.decode()
    return type_url, version, nonce, anys


def children(data: bytes, number: int) -> list[bytes]:
    """The payloads of length-delimited field ``number``."""
    return [v for n, v in fields(data) if n == number and isinstance(v, bytes)]


def _any_value(any_bytes: bytes) -> bytes:
    return b"".join(children(any_bytes, 2))


def eds_names(anys: list[bytes]) -> list[str]:
    """The CLA names Envoy would request: EDS clusters' service_name, else their name."""
    names = []
    for a in anys:
        name, service, eds = "", "", False
        for number, value in fields(_any_value(a)):
            if number == 1 and isinstance(value, bytes):
                name = value.decode()
            elif number == 2 and value == EDS_TYPE:
                eds = True
            elif number == 3 and isinstance(value, bytes):
                service = b"".join(children(value, 2)).decode()
        if eds:
            names.append(service or name)
    return sorted(names)


def route_names(anys: list[bytes]) -> list[str]:
    """RDS names of HttpConnectionManagers: filter_chains 3 > filters 3 > typed_config 4 > rds 3 > name 2."""
    names: set[str] = set()
    for a in anys:
        for chain in children(_any_value(a), 3):
            for flt in children(chain, 3):
                for typed in children(flt, 4):
                    if b"".join(children(typed, 1)) == HCM:
                        for rds in children(_any_value(typed), 3):
                            names.update(v.decode() for v in children(rds, 2))
    return sorted(names)


class Client:
    """One simulated Envoy: one stream, SotW, ACKs everything; reconnects (like Envoy) if the stream fails."""

    def __init__(self, node_id: str, channel: Any, memo: dict[tuple[str, str], list[str]]) -> None:
        self.node_id = node_id
        self.channel = channel
        self.memo = memo
        self.subscribed: dict[str, list[str]] = {}
        self.got: set[str] = set()
        self.last_response = time.monotonic()
        self.failures: list[str] = []

    async def run(self) -> None:
        while True:
            self.subscribed = {CLUSTER: [], LISTENER: []}
            self.got = set()
            call = self.channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)()
            try:
                await call.write(request(CLUSTER, [], node=self.node_id))
                await call.write(request(LISTENER, []))
                while True:
                    data = await call.read()
                    if data is grpc.aio.EOF:
                        raise RuntimeError("server ended the stream")
                    await self.on_response(call, data)
            except (grpc.RpcError, RuntimeError) as exc:
                self.failures.append(" ".join(str(exc).split())[:300])
                await asyncio.sleep(1.0)

    async def on_response(self, call: Any, data: bytes) -> None:
        type_url, version, nonce, anys = response_header(data)
        self.last_response = time.monotonic()
        self.got.add(type_url)
        await call.write(request(type_url, self.subscribed.get(type_url, []), version, nonce))
        follow = {CLUSTER: (ENDPOINT, eds_names), LISTENER: (ROUTE, route_names)}.get(type_url)
        if follow is None:
            return
        child, derive = follow
        key = (type_url, version)
        names = self.memo.get(key)
        if names is None:
            names = self.memo[key] = derive(anys)
        if names != self.subscribed.get(child):
            self.subscribed[child] = names
            await call.write(request(child, names))

    @property
    def synced(self) -> bool:
        wanted = {CLUSTER, LISTENER} | {t for t in (ENDPOINT, ROUTE) if self.subscribed.get(t)}
        return wanted <= self.got


async def settle(clients: list[Client], quiet: float = 0.5) -> None:
    """Until every client holds a full configuration and nothing arrived for ``quiet`` seconds."""
    while not all(c.synced for c in clients) or time.monotonic() - max(c.last_response for c in clients) < quiet:
        await asyncio.sleep(0.1)


async def main_async(port: int, node_ids: list[str], per_channel: int, batch: int) -> None:
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 256 << 20)]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options)
        for _ in range((len(node_ids) + per_channel - 1) // per_channel)
    ]
    memo: dict[tuple[str, str], list[str]] = {}
    clients = [Client(n, channels[i // per_channel], memo) for i, n in enumerate(node_ids)]
    tasks = []
    for start in range(0, len(clients), batch):  # connect in waves, so no handshake waits behind thousands of syncs
        group = clients[start : start + batch]
        tasks += [asyncio.create_task(c.run()) for c in group]
        await settle(group)
    await settle(clients)
    failures = [f for c in clients for f in c.failures]
    hello = {
        "synced": len(clients),
        "eds_streams": sum(1 for c in clients if c.subscribed.get(ENDPOINT)),
        "rds_streams": sum(1 for c in clients if c.subscribed.get(ROUTE)),
        "reconnects": len(failures),
        "first_failure": failures[0] if failures else "",
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
    parser.add_argument("--batch", type=int, default=250, help="streams opened per wave")
    args = parser.parse_args()
    with open(args.nodes_file) as f:
        nodes = [line.strip() for line in f if line.strip()]
    asyncio.run(main_async(args.port, nodes, args.streams_per_connection, args.batch))


if __name__ == "__main__":
    main()
