"""Model-based test: the stream state machines against a simulated Envoy, under random interleavings.

Hypothesis draws a sequence of snapshot changes (some with a cluster Envoy rejects) and of
message deliveries in either direction. The simulated Envoy behaves like the real one: it
rejects a whole response that holds an invalid cluster, subscribes to the CLA of every
cluster it holds, and needs a fresh CLA after each added or changed cluster (warming).
Checked throughout: no rejected content is re-sent without a snapshot change (no NACK loop
or storm), each push is ordered CDS → EDS → LDS → RDS (a trailing cluster removal aside), and
Envoy never holds a listener whose cluster is missing or still warming (make before break).
Checked at the end (last snapshot valid, all messages delivered): Envoy holds exactly the
snapshot, subscribes to exactly its CLAs, and no cluster is left warming.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, TYPE_ORDER, Snapshot
from meshxds.xds.cache import NodeStatus
from meshxds.xds.delta import DeltaStream
from meshxds.xds.sotw import SotwStream
from meshxds.xds.stream import Stream
from meshxds.xds.wire import fields
from tests.support import xdsres as r
from tests.support.discovery import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
    Status,
)

NODE = "default.sim"
BAD = "bad"  # the simulated Envoy rejects any response carrying this cluster
NAMES = ("a", "b", "c")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def resource_name(any_value: bytes) -> str:
    """Field 1 of Cluster / Listener (name) and of ClusterLoadAssignment (cluster_name)."""
    for number, value in fields(any_value):
        if number == 1 and isinstance(value, bytes):
            return value.decode()
    return ""


def make_snapshot(spec: dict[str, tuple[int, int]], bad: bool) -> Snapshot:
    """``spec``: cluster name → (cluster variant, endpoint port); a listener per cluster."""
    entries = []
    for name, (variant, port) in spec.items():
        entries += [
            r.cluster(name, float(variant)),
            r.cla(name, ("127.0.0.1", port)),
            r.http_listener(f"l-{name}", "127.0.0.1", 10000 + port, name),
        ]
    if bad:
        entries += [r.cluster(BAD, 0), r.cla(BAD, ("127.0.0.1", 1))]
    return r.snapshot(NODE, *entries)


@dataclass
class SimEnvoy:
    delta: bool
    clusters: dict[str, str] = field(default_factory=dict)  # name -> digest of the Any it holds
    claims: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, str] = field(default_factory=dict)
    eds_names: set[str] = field(default_factory=set)
    warming: set[str] = field(default_factory=set)
    warmed: set[str] = field(default_factory=set)  # clusters that finished warming at least once
    nonce: dict[str, str] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)

    def start(self) -> list[bytes]:
        return [self._request(CLUSTER), self._request(LISTENER)]

    def _request(self, type_url: str, nonce: str = "", error: str | None = None, **delta: list[str]) -> bytes:
        status = Status(code=3, message=error) if error else None
        if self.delta:
            return bytes(
                DeltaDiscoveryRequest(
                    type_url=type_url,
                    response_nonce=nonce,
                    error_detail=status,
                    resource_names_subscribe=delta.get("subscribe", []),
                    resource_names_unsubscribe=delta.get("unsubscribe", []),
                )
            )
        names = sorted(self.eds_names) if type_url == ENDPOINT else []
        return bytes(
            DiscoveryRequest(
                type_url=type_url,
                version_info=self.version.get(type_url, ""),
                resource_names=names,
                response_nonce=nonce,
                error_detail=status,
            )
        )

    def receive(self, data: bytes) -> list[bytes]:
        """Apply one response like Envoy; returns the requests Envoy sends in reply."""
        if self.delta:
            d = DeltaDiscoveryResponse.parse(data)
            items = [(r.name, r.resource.value) for r in d.resources]
            type_url, nonce, version, removed = d.type_url, d.nonce, d.system_version_info, list(d.removed_resources)
        else:
            m = DiscoveryResponse.parse(data)
            items = [(resource_name(a.value), a.value) for a in m.resources]
            type_url, nonce, version, removed = m.type_url, m.nonce, m.version_info, []
        if type_url == CLUSTER and any(n == BAD for n, _ in items):
            return [self._request(type_url, nonce, error="ConnectTimeout: value must be greater than 0s")]
        self.nonce[type_url], self.version[type_url] = nonce, version
        held = {CLUSTER: self.clusters, ENDPOINT: self.claims, LISTENER: self.listeners}[type_url]
        if not self.delta and type_url in (CLUSTER, LISTENER):
            removed = [n for n in held if n not in {n for n, _ in items}]
        for name in removed:
            held.pop(name, None)
        for name, value in items:
            if type_url == ENDPOINT and name not in self.eds_names:
                continue  # Envoy ignores what it did not ask for
            if type_url == CLUSTER and held.get(name) != digest(value):
                self.warming.add(name)  # an added or changed cluster warms until a fresh CLA arrives
            if type_url == ENDPOINT:
                self.warming.discard(name)
            held[name] = digest(value)
        self.warmed = (self.warmed & set(self.clusters)) | (set(self.clusters) - self.warming)
        for listener in self.listeners:  # make before break: a listener never points at a missing cluster
            target = listener.removeprefix("l-")
            assert target in self.warmed, f"{listener} routes to {target}, which Envoy has not warmed: 503s"
        out = [self._request(type_url, nonce)]  # the ACK
        if type_url == CLUSTER:
            self.warming &= set(self.clusters)
            wanted = set(self.clusters)
            added, gone = sorted(wanted - self.eds_names), sorted(self.eds_names - wanted)
            if added or gone:
                self.eds_names = wanted
                for name in gone:
                    self.claims.pop(name, None)
                if self.delta:
                    out.append(self._request(ENDPOINT, subscribe=added, unsubscribe=gone))
                else:
                    out.append(self._request(ENDPOINT, self.nonce.get(ENDPOINT, "")))
        return out


Content = tuple[str, frozenset[tuple[str, str]]]


def decode(data: bytes, delta: bool) -> tuple[str, str, Content]:
    """(type_url, nonce, content) of a response; content = resources (name, digest) and removals."""
    if delta:
        d = DeltaDiscoveryResponse.parse(data)
        items = {(r.name, digest(r.resource.value)) for r in d.resources} | {("-", n) for n in d.removed_resources}
        return d.type_url, d.nonce, (d.type_url, frozenset(items))
    m = DiscoveryResponse.parse(data)
    return m.type_url, m.nonce, (m.type_url, frozenset((resource_name(a.value), digest(a.value)) for a in m.resources))


def nack_of(data: bytes, delta: bool) -> str | None:
    """The nonce a request NACKs, if it is a NACK."""
    req = DeltaDiscoveryRequest.parse(data) if delta else DiscoveryRequest.parse(data)
    return req.response_nonce if req.error_detail is not None else None


def check_push_order(kinds: list[int]) -> None:
    if len(kinds) > 1 and kinds[-1] == 0 and any(k > 0 for k in kinds[:-1]):
        kinds = kinds[:-1]  # the held-back cluster removal goes last
    assert kinds == sorted(kinds), f"push out of order: {kinds}"


specs = st.dictionaries(st.sampled_from(NAMES), st.tuples(st.integers(1, 2), st.integers(1, 2)), max_size=3)
steps = st.lists(st.one_of(st.tuples(st.just("set"), specs, st.booleans()), st.sampled_from(["to-envoy", "to-server"])))


def simulate(delta: bool, plan: list[object], final: dict[str, tuple[int, int]]) -> None:
    stream: Stream = DeltaStream(NODE, NodeStatus(NODE)) if delta else SotwStream(NODE, NodeStatus(NODE))
    envoy = SimEnvoy(delta)
    snap = make_snapshot({"a": (1, 1)}, False)
    to_envoy: deque[bytes] = deque()
    to_server: deque[bytes] = deque(envoy.start())
    now = 0.0
    epoch = 0
    contents: dict[str, Content] = {}  # nonce -> what that response carried
    rejected: dict[Content, int] = {}  # content the server saw NACKed -> epoch it saw it in

    def flush() -> None:
        kinds = []
        for data in stream.responses(snap, now):
            type_url, nonce, content = decode(data, delta)
            assert rejected.get(content) != epoch, f"re-sent rejected {content} without a snapshot change"
            contents[nonce] = content
            kinds.append(TYPE_ORDER.index(type_url))
            to_envoy.append(data)
        check_push_order(kinds)

    def to_stream(data: bytes) -> None:
        nacked = nack_of(data, delta)
        if nacked is not None:
            rejected[contents[nacked]] = epoch
        stream.handle(data, now)
        flush()

    for step in [*plan, ("set", final, False)]:
        if isinstance(step, tuple):
            snap = make_snapshot(step[1], step[2])
            epoch += 1
            flush()
        elif step == "to-envoy" and to_envoy:
            to_server.extend(envoy.receive(to_envoy.popleft()))
        elif step == "to-server" and to_server:
            to_stream(to_server.popleft())
    for _ in range(1000):  # deliver everything, in both directions, without any time passing
        if to_server:
            to_stream(to_server.popleft())
        elif to_envoy:
            to_server.extend(envoy.receive(to_envoy.popleft()))
        else:
            break
    assert not to_server and not to_envoy, "no quiescence"
    want = {t: {n: digest(_value(e.any)) for n, e in snap.get(t).items()} for t in (CLUSTER, ENDPOINT, LISTENER)}
    assert envoy.clusters == want[CLUSTER]
    assert envoy.eds_names == set(want[ENDPOINT])
    assert envoy.claims == want[ENDPOINT]
    assert envoy.listeners == want[LISTENER]
    assert not envoy.warming, f"clusters stuck warming: {envoy.warming}"


def _value(any_bytes: bytes) -> bytes:
    return next(v for n, v in fields(any_bytes) if n == 2 and isinstance(v, bytes))


@settings(max_examples=int(os.environ.get("MODEL_EXAMPLES", "150")), deadline=None)
@given(plan=steps, final=specs)
# A NACK of a superseded CDS response once rolled the client state back so that the next push
# re-sent the rejected clusters state though the snapshot had not changed since the NACK.
@example(
    plan=[
        "to-server",
        ("set", {}, True),
        "to-envoy",
        "to-envoy",
        "to-server",
        ("set", {"a": (1, 1)}, False),
        ("set", {}, True),
        "to-envoy",
        "to-server",
        "to-server",
        "to-server",
        "to-server",
    ],
    final={},
)
def test_sotw_converges_without_loops_or_warming_stalls(plan: list[object], final: dict[str, tuple[int, int]]) -> None:
    simulate(False, plan, final)


@settings(max_examples=int(os.environ.get("MODEL_EXAMPLES", "150")), deadline=None)
@given(plan=steps, final=specs)
def test_delta_converges_without_loops_or_warming_stalls(plan: list[object], final: dict[str, tuple[int, int]]) -> None:
    simulate(True, plan, final)
