"""Responses framed from shared blocks are byte-identical to framing every resource per stream, and the
streams of proxies that share a map share its frames; the bench client's cheap parser reads them right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench import clients
from bench.mesh import MeshSpec, build_catalog
from bench.streams import Driver
from meshxds.snapshots.builder import Builder
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Entry, Layered, Snapshot
from meshxds.xds import framing
from meshxds.xds.diff import SHARE_AT, changed_versions, eds_targets, equal_versions, versions_of
from meshxds.xds.wire import parse_request, sotw_response, sotw_response_framed
from tests.support import xdsres as r


def clusters(names: list[str]) -> dict[str, Entry]:
    return {n: r.cluster(n) for n in names}


def test_a_layered_map_is_framed_in_name_order_around_its_own_resources() -> None:
    shared = clusters([f"m-{i:03d}" for i in range(SHARE_AT + 8)])
    # Own names before, between and after the shared ones.
    for own_names in (["a-own"], ["m-0005x", "m-0200"], ["z-1", "z-2"], ["a", "m-010a", "zz"], []):
        entries = Layered(clusters(own_names), shared)
        want = sotw_response(CLUSTER, "v1", (entries[n].any for n in sorted(entries)), "n-1")
        assert sotw_response_framed(CLUSTER, "v1", framing.whole(entries), "n-1") == want, own_names
    assert framing.framed(shared) is framing.framed(shared)  # built once per shared map


def test_a_subset_of_a_shared_map_is_framed_like_each_resource() -> None:
    shared = clusters([f"c-{i:03d}" for i in range(SHARE_AT * 2)])
    for names in (sorted(shared), sorted(shared)[3:40], ["c-001"], sorted(shared)[::3]):
        want = sotw_response(CLUSTER, "v", (shared[n].any for n in names), "x")
        assert sotw_response_framed(CLUSTER, "v", framing.some(shared, names), "x") == want


def test_version_maps_compare_and_diff_layer_by_layer() -> None:
    old_shared = clusters([f"s-{i:03d}" for i in range(SHARE_AT)])
    new_shared = {**old_shared, "s-001": r.cluster("s-001", 9.0)}
    own = clusters(["own"])
    old, new = versions_of(Layered(own, old_shared)), versions_of(Layered(own, new_shared))
    assert equal_versions(old, versions_of(Layered(own, old_shared)))
    assert not equal_versions(old, new) and not equal_versions(old, {})
    assert changed_versions(old, new) == ["s-001"]
    assert sorted(changed_versions({}, new)) == sorted(new)
    assert changed_versions(old, new) is not changed_versions(old, new)  # a fresh list each time...
    assert changed_versions(old, new) == changed_versions(old, new)  # ...of the same shared diff


def test_eds_targets_are_the_clas_each_eds_cluster_waits_for(tmp_path: Path) -> None:
    snaps = Builder().build(build_catalog(MeshSpec(services=40, dataplanes_per_service=2), tmp_path))
    snap = next(iter(snaps.values()))
    targets = eds_targets(snap.get(CLUSTER), snap.get(ENDPOINT))
    assert sorted(targets) == sorted(snap.get(ENDPOINT))
    assert all(snap.get(CLUSTER)[c].eds_service == t for t, c in targets.items())


def test_the_bench_clients_cheap_parser_reads_every_response_as_a_full_walk_does(tmp_path: Path) -> None:
    snaps = Builder().build(build_catalog(MeshSpec(services=40, dataplanes_per_service=2), tmp_path))
    memo: dict[tuple[str, str], list[str]] = {}
    layout = clients.Layout()
    sent: list[bytes] = []
    for node in sorted(snaps)[:4]:
        d = Driver(node, memo)
        build = d.stream.responses

        def recording(snap: Snapshot | None, now: float, build: Callable[..., list[bytes]] = build) -> list[bytes]:
            out = build(snap, now)
            sent.extend(out)
            return out

        d.stream.responses = recording  # type: ignore[method-assign]
        d.start()
        d.pump(snaps[node])
    assert {clients.response_header(data)[0] for data in sent} == {CLUSTER, ENDPOINT, LISTENER, ROUTE}
    hits = 0
    for data in sent:
        full = clients.response_header(data)
        cheap = layout.parse(data)
        assert cheap[:3] == full[:3]  # type, version, nonce: memoised or walked, the same
        assert cheap[3] is None or cheap[3] == full[3]
        hits += cheap[3] is None
    # EDS and RDS carry the version every proxy shares: all but the first copy of each are read from the memo
    # (CDS and LDS versions are per proxy: those are walked).
    assert hits == 2 * (4 - 1) and len(sent) == 4 * 4


def test_a_subscription_many_streams_send_is_decoded_once() -> None:
    names = [f"cla-{i:04d}" for i in range(SHARE_AT * 3)]
    first = parse_request(clients.request(ENDPOINT, names))
    again = parse_request(clients.request(ENDPOINT, names, "v1", "n-1"))
    assert first.resource_names == again.resource_names == tuple(names)
    assert first.names_digest == again.names_digest and not again.names_reused
    known = parse_request(clients.request(ENDPOINT, names, "v1", "n-2"), known=[(first.names_digest, first.names_size)])
    assert known.names_reused and known.resource_names == () and known.response_nonce == "n-2"
    other = parse_request(clients.request(ENDPOINT, [*names[:-1], "cla-9999"]))
    assert other.resource_names[-1] == "cla-9999" and other.names_digest != first.names_digest
