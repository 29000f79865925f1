"""Streams share what every proxy holds: per-stream state is what a stream differs on, not a copy.

Driven through the SotW state machine like Envoy (``bench.streams.Driver``: CDS and LDS wildcard,
then the CLAs and routes they name, every response ACKed) on the benchmark's all-to-all mesh.
"""

from __future__ import annotations

from pathlib import Path

from bench.mesh import MeshSpec, build_catalog, with_endpoint_change
from bench.streams import Driver
from meshxds.snapshots.builder import Builder
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, Layered, Snapshot
from meshxds.xds.diff import SHARE_AT
from meshxds.xds.ledger import Ledger


def synced(tmp_path: Path) -> tuple[list[Driver], dict[str, Snapshot], dict[str, Snapshot]]:
    spec = MeshSpec(services=40, dataplanes_per_service=2)  # maps of 40: above SHARE_AT, so shared
    catalog = build_catalog(spec, tmp_path)
    builder = Builder()
    before = builder.build(catalog)
    after = builder.build(with_endpoint_change(spec, tmp_path, catalog))
    memo: dict[tuple[str, str], list[str]] = {}
    drivers = [Driver(node, memo) for node in sorted(before)[2:5]]  # proxies of other services than the moved one
    for d in drivers:
        d.start()
        d.pump(before[d.node_id])
    return drivers, dict(before), dict(after)


def test_streams_with_the_same_subscription_share_names_and_held_versions(tmp_path: Path) -> None:
    drivers, before, _ = synced(tmp_path)
    eds = [d.stream.types[ENDPOINT] for d in drivers]
    assert len(eds[0].sub.names) == 40 > SHARE_AT
    assert all(st.sub.names is eds[0].sub.names for st in eds)  # one interned frozenset
    assert all(st.ledger.held() is eds[0].ledger.held() for st in eds)  # one version map
    snap = before[drivers[0].node_id]
    assert dict(eds[0].ledger.held()) == {n: e.version for n, e in snap.get(ENDPOINT).items()}
    cds = [d.stream.types[CLUSTER].ledger.held() for d in drivers]
    layers = [h.layers for h in cds if isinstance(h, Layered)]
    assert len(layers) == len(cds)
    assert all(own[-1] is layers[0][-1] for own in layers)  # the shared layer's versions: one map


def test_after_a_push_the_streams_share_the_new_versions(tmp_path: Path) -> None:
    drivers, before, after = synced(tmp_path)
    for d in drivers:
        assert d.pump(after[d.node_id]) == 1  # the changed CLA
    eds = [d.stream.types[ENDPOINT].ledger for d in drivers]
    snap = after[drivers[0].node_id]
    assert dict(eds[0].held()) == {n: e.version for n, e in snap.get(ENDPOINT).items()}
    assert all(ledger.held() is eds[0].held() for ledger in eds)
    assert dict(eds[0].held()) != {n: e.version for n, e in before[drivers[0].node_id].get(ENDPOINT).items()}


def test_a_shared_map_is_copied_before_a_stream_changes_it() -> None:
    shared = {"a": "1", "b": "1"}
    one, two = Ledger(), Ledger()
    for ledger in (one, two):
        ledger.set("a", "1")
        ledger.set("b", "1")
        ledger.sent("n0", "v1", ["a", "b"])
        assert ledger.ack("n0")
        ledger.share(shared)
        assert ledger.held() is shared
    one.set("a", "2")
    one.sent("n1", "v2", ["a"])
    assert shared == {"a": "1", "b": "1"} and two.held() is shared
    assert one.held() == {"a": "2", "b": "1"}
    one.nack("n1", lambda name: True)  # rolled back to what Envoy had confirmed
    assert one.held() == {"a": "1", "b": "1"} and shared == {"a": "1", "b": "1"}
