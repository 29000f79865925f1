"""Server-side memory of connected streams, counted exactly: SotW streams driven in this process.

RSS per stream (``bench.push``) includes gRPC/HTTP2 connection state and moves with the allocator;
this counts with ``tracemalloc`` only what the xDS state machines hold once every stream has
synced like Envoy (CDS and LDS wildcard, then the CLAs of its EDS clusters and its RDS names, every
response ACKed), and then replays one endpoint change to check the pushes still go out.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass

from bench import clients
from bench.clients import eds_names, request, response_header, route_names
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot
from meshxds.xds.cache import NodeStatus
from meshxds.xds.sotw import SotwStream

FOLLOW = {CLUSTER: (ENDPOINT, eds_names), LISTENER: (ROUTE, route_names)}


@dataclass(frozen=True)
class StreamMemory:
    streams: int
    bytes_per_stream: float  # traced allocations still held per synced stream
    bytes_after_push: float  # the same after one endpoint change was pushed and ACKed
    sync_s: float  # driving every stream to a full configuration (state machines only, traced)
    push_s: float  # the state machines' work for one endpoint change, all streams (traced)
    responses_per_push: float


class Driver:
    """The client side of one stream, as Envoy behaves: ACK everything, follow clusters and listeners."""

    def __init__(self, node_id: str, memo: dict[tuple[str, str], list[str]]) -> None:
        self.stream = SotwStream(node_id, NodeStatus(node_id))
        self.subscribed: dict[str, list[str]] = {CLUSTER: [], LISTENER: []}
        self.memo = memo
        self.node_id = node_id

    def start(self) -> None:
        self.stream.handle(request(CLUSTER, [], node=self.node_id), 0.0)
        self.stream.handle(request(LISTENER, []), 0.0)

    def pump(self, snap: Snapshot) -> int:
        """Answer responses until the stream has nothing more to send; returns how many were sent."""
        sent = 0
        while True:
            out = self.stream.responses(snap, time.monotonic())
            if not out:
                return sent
            sent += len(out)
            for data in out:
                type_url, version, nonce, anys = response_header(data)
                self.stream.handle(request(type_url, self.subscribed.get(type_url, []), version, nonce), 0.0)
                follow = FOLLOW.get(type_url)
                if follow is None:
                    continue
                child, derive = follow
                names = self.memo.get((type_url, version))
                if names is None:
                    names = self.memo[(type_url, version)] = derive(anys)
                if names != self.subscribed.get(child):
                    self.subscribed[child] = names
                    self.stream.handle(request(child, names), 0.0)


def run(before: Mapping[str, Snapshot], after: Mapping[str, Snapshot], node_ids: list[str]) -> StreamMemory:
    """Sync ``node_ids`` on ``before``, then push ``after``; shared state the streams create (interned
    name sets, shared version maps) counts too, spread over the streams."""
    memo: dict[tuple[str, str], list[str]] = {}
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    started = time.perf_counter()
    drivers = [Driver(n, memo) for n in node_ids]
    for d in drivers:
        d.start()
        d.pump(before[d.node_id])
    sync_s = time.perf_counter() - started
    gc.collect()
    # Only the server's: what the simulated clients allocate (their parsed names) is left out.
    server = [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, clients.__file__)]

    def held() -> float:
        now = tracemalloc.take_snapshot().filter_traces(server)
        return sum(s.size_diff for s in now.compare_to(base.filter_traces(server), "filename")) / len(drivers)

    synced = held()
    started = time.perf_counter()
    sent = sum(d.pump(after[d.node_id]) for d in drivers)
    push_s = time.perf_counter() - started
    gc.collect()
    pushed = held()
    tracemalloc.stop()
    return StreamMemory(len(drivers), synced, pushed, sync_s, push_s, sent / len(drivers))
