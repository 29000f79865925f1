"""Incremental (Delta) ADS rules, driven through a real gRPC stream by a fake Envoy."""

from __future__ import annotations

import grpc

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER
from meshxds.xds.stream import PROCESS_ID
from tests.support import xdsres as r
from tests.support.adsclient import AdsClient, Serving, all_answered, answered, run, until

NODE = "default.web-1"
UP = r.UPSTREAM


def base(*extra: r.Entry, timeout: float = 1.0) -> r.Snapshot:
    return r.two_clusters(NODE, *extra, timeout=timeout)


async def connect_all(c: AdsClient) -> None:
    await c.delta_request(CLUSTER)
    cds = await c.expect(CLUSTER)
    await c.delta_ack(cds)
    await c.delta_request(ENDPOINT, ["a", "b"])
    await c.delta_ack(await c.expect(ENDPOINT))
    await c.delta_request(LISTENER)
    await c.delta_ack(await c.expect(LISTENER))


def test_initial_wildcard_carries_per_resource_versions() -> None:
    async def scenario() -> None:
        snap = base()
        async with Serving(snap) as s, s.client(NODE, delta=True) as c:
            await c.delta_request(CLUSTER)
            cds = await c.expect(CLUSTER)
            assert cds.versions == {n: e.version for n, e in snap.get(CLUSTER).items()}
            assert cds.removed == []
            assert cds.nonce.startswith(PROCESS_ID)
            await c.delta_ack(cds)
            await c.expect_nothing()

    run(scenario)


def test_only_changed_resources_and_removals_are_sent() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(r.replace(base(), r.cla("b", ("127.0.0.5", 5))))
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["b"] and eds.removed == []
            await c.delta_ack(eds)
            await until(answered(s, eds, NODE))
            s.set(r.replace(base(), r.cla("b", ("127.0.0.5", 5)), r.cluster("c"), drop=((CLUSTER, "b"),)))
            cds = await c.expect(CLUSTER)
            assert cds.names == ["c"]
            assert cds.removed == ["b"]  # no listener changes, so nothing to wait for

    run(scenario)


def test_reconnect_with_initial_resource_versions_sends_only_the_difference() -> None:
    async def scenario() -> None:
        snap = base()
        known = {"a": snap.get(CLUSTER)["a"].version, "b": "outdated", "gone": "v1"}
        async with Serving(snap) as s, s.client(NODE, delta=True) as c:
            await c.delta_request(CLUSTER, initial=known)
            cds = await c.expect(CLUSTER)
            assert cds.names == ["b"]
            assert cds.removed == ["gone"]

    run(scenario)


def test_nack_rolls_back_and_does_not_storm() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await connect_all(c)
            await until(all_answered(s))
            # One response adds a bad cluster; Envoy rejects it whole.
            s.set(base(r.cluster("bad", 0), r.cla("bad", UP)))
            bad = await c.expect(CLUSTER)
            assert bad.names == ["bad"]
            await c.delta_ack(bad, error="ClusterValidationError.ConnectTimeout: value must be greater than 0s")
            await c.expect_nothing(0.5)  # no re-send of the rejected version
            status = s.cache.node_status(NODE)
            assert status.nacks == 1
            assert status.last_nack is not None and "ConnectTimeout" in status.last_nack.message
            # The fix drops "bad" and removes "b": Envoy never held "bad" (rollback), so only b is removed.
            s.set(r.replace(base(), drop=((CLUSTER, "b"), (ENDPOINT, "b"))))
            nxt = await c.expect(CLUSTER)
            assert nxt.names == [] and nxt.removed == ["b"]

    run(scenario)


def test_a_rejected_response_goes_again_only_once_part_of_it_changed() -> None:
    """Envoy does not say which resource was bad: nothing of a rejected response is re-sent while the
    snapshot still holds all of it; once one part changed, the rest (a removal here) goes again."""

    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await connect_all(c)
            await until(all_answered(s))
            drop_b = ((CLUSTER, "b"), (ENDPOINT, "b"))
            s.set(r.replace(base(), r.cluster("x", 0), drop=drop_b))
            bad = await c.expect(CLUSTER)
            assert (bad.names, bad.removed) == (["x"], ["b"])
            await c.delta_ack(bad, error="x: ConnectTimeout must be > 0")
            await c.expect_nothing(0.4)
            s.set(r.replace(base(), r.cluster("x", 0), r.cla("a", ("127.0.0.9", 9)), drop=drop_b))  # x still bad
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["a"]
            await c.delta_ack(eds)
            await until(answered(s, eds, NODE))
            await c.expect_nothing(0.3)  # neither x nor the removal of b again
            s.set(r.replace(base(), r.cluster("x", 3.0), drop=drop_b))  # x fixed
            retry = await c.expect(CLUSTER)
            assert retry.names == ["x"]
            if not retry.removed:  # the removal may wait for listeners to settle
                await c.delta_ack(retry)
                retry = await c.expect(CLUSTER)
            assert retry.removed == ["b"]

    run(scenario)


def test_subscription_changes_are_honoured_with_a_stale_nonce() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await c.delta_request(ENDPOINT, ["a"])
            first = await c.expect(ENDPOINT)
            await c.delta_ack(first)
            s.set(r.replace(base(), r.cla("a", ("127.0.0.4", 4))))
            second = await c.expect(ENDPOINT)
            await c.delta_request(ENDPOINT, ["b"], nonce=first.nonce)  # stale nonce, new subscription
            third = await c.expect(ENDPOINT)
            assert third.names == ["b"]
            assert second.nonce != third.nonce

    run(scenario)


def test_explicit_subscribe_is_answered_even_if_unchanged_and_unsubscribe_stops_pushes() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await c.delta_request(ENDPOINT, ["a"])
            await c.delta_ack(await c.expect(ENDPOINT))
            await c.delta_request(ENDPOINT, unsubscribe=["a"])
            await c.expect_nothing(0.2)
            await c.delta_request(ENDPOINT, ["a"])
            again = await c.expect(ENDPOINT)
            assert again.names == ["a"]
            await c.delta_ack(again)
            await c.delta_request(ENDPOINT, unsubscribe=["a"])
            stream = next(iter(s.server.streams))
            await until(lambda: not stream.types[ENDPOINT].sub.names)
            s.set(r.replace(base(), r.cla("a", ("127.0.0.6", 6))))
            await c.expect_nothing()

    run(scenario)


def test_cluster_change_forces_a_fresh_cla() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(base(timeout=9.0))
            cds = await c.expect(CLUSTER)
            assert cds.names == ["a"]
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["a"]
            assert eds.versions["a"] == s.cache.get(NODE).get(ENDPOINT)["a"].version  # type: ignore[union-attr]

    run(scenario)


def test_cluster_removal_waits_for_the_listener_update() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE, delta=True) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(r.snapshot(NODE, r.cluster("b"), r.cla("b", UP), r.http_listener("out", "127.0.0.1", 10001, "b")))
            lds = await c.expect(LISTENER)
            assert lds.names == ["out"]
            await c.expect_nothing(0.2)
            await c.delta_ack(lds)
            cds = await c.expect(CLUSTER)
            assert cds.names == [] and cds.removed == ["a"]

    run(scenario)


def test_unknown_node_is_refused_on_delta_too() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client("other.web-1", delta=True) as c:
            await c.delta_request(CLUSTER)
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.NOT_FOUND and "other.web-1" in details

    run(scenario)
