"""State-of-the-world ADS rules, driven through a real gRPC stream by a fake Envoy."""

from __future__ import annotations

import time

import grpc

from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshxds.xds.cache import NodeStatus
from meshxds.xds.sotw import SotwStream
from meshxds.xds.stream import GATE_TIMEOUT, PROCESS_ID
from tests.support import xdsres as r
from tests.support.adsclient import AdsClient, Serving, all_answered, answered, run, until
from tests.support.discovery import DiscoveryRequest

NODE = "default.web-1"
UP = r.UPSTREAM


def base(*extra: r.Entry, timeout: float = 1.0) -> r.Snapshot:
    return r.two_clusters(NODE, *extra, timeout=timeout)


async def connect_all(c: AdsClient) -> None:
    """Bring a fake Envoy to steady state: CDS, EDS a+b, LDS, all ACKed."""
    await c.request(CLUSTER)
    cds = await c.expect(CLUSTER)
    await c.ack(cds)
    await c.request(ENDPOINT, ["a", "b"])
    eds = await c.expect(ENDPOINT)
    await c.ack(eds, ["a", "b"])
    await c.request(LISTENER)
    lds = await c.expect(LISTENER)
    await c.ack(lds)


def test_unknown_node_gets_not_found_naming_it() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client("default.nobody") as c:
            await c.request(CLUSTER)
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.NOT_FOUND
            assert "default.nobody" in details and "no Dataplane 'nobody' in mesh 'default'" in details

    run(scenario)


def test_missing_node_id_is_invalid_argument() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(None) as c:
            await c.request(CLUSTER)
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert "node.id" in details

    run(scenario)


def test_missing_type_url_is_invalid_argument() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request("")
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert "type_url" in details

    run(scenario)


def test_wildcard_cds_then_ack_is_quiet_and_nonces_are_global() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c1, s.client(NODE) as c2:
            await c1.request(CLUSTER)
            first = await c1.expect(CLUSTER)
            assert first.names == ["a", "b"]
            assert first.version == s.cache.get(NODE).versions[CLUSTER]  # type: ignore[union-attr]
            await c1.ack(first)
            await c1.expect_nothing()
            status = s.cache.node_status(NODE).types[CLUSTER]
            assert (status.acked_version, status.answered_nonce, status.acks) == (first.version, first.nonce, 1)
            await c2.request(CLUSTER)
            other = await c2.expect(CLUSTER)
            assert other.nonce != first.nonce
            assert first.nonce.startswith(PROCESS_ID) and other.nonce.startswith(PROCESS_ID)

    run(scenario)


def test_eds_sends_only_requested_names() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request(ENDPOINT, ["a", "missing"])
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["a"]
            await c.ack(eds, ["a", "missing"])
            await c.expect_nothing()
            await c.ack(eds, ["a", "b"])  # a name added: answered with just that CLA
            more = await c.expect(ENDPOINT)
            assert more.names == ["b"]

    run(scenario)


def test_stale_nonce_is_ignored() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request(ENDPOINT, ["a"])
            first = await c.expect(ENDPOINT)
            await c.ack(first, ["a"])
            await until(answered(s, first, NODE))
            s.set(r.replace(base(), r.cla("a", ("127.0.0.2", 1))))
            second = await c.expect(ENDPOINT)
            assert second.nonce != first.nonce
            await c.request(ENDPOINT, ["a", "b"], nonce=first.nonce, version=first.version)  # stale
            await c.expect_nothing()
            status = s.cache.node_status(NODE)
            assert status.stale_requests == 1
            await c.ack(second, ["a", "b"])  # the same subscription with the current nonce is honoured
            third = await c.expect(ENDPOINT)
            assert third.names == ["b"]

    run(scenario)


def test_nack_is_recorded_and_never_answered_with_the_same_version() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            good = c.last[CLUSTER]
            s.set(base(timeout=0))
            bad = await c.expect(CLUSTER)
            eds = await c.expect(ENDPOINT)  # the changed cluster a gets a fresh CLA (warming)
            await c.ack(eds, ["a", "b"])
            await c.request(CLUSTER, nonce=bad.nonce, version=good.version, error="connect_timeout must be > 0")
            await c.expect_nothing(0.5)
            status = s.cache.node_status(NODE)
            assert status.nacks == 1
            assert status.last_nack is not None
            assert status.last_nack.version == bad.version
            assert "connect_timeout" in status.last_nack.message
            assert status.types[CLUSTER].acked_version == good.version
            # Setting the same (rejected) snapshot again wakes nobody and sends nothing.
            assert not s.set(base(timeout=0))
            await c.expect_nothing()
            # A fixed snapshot is sent.
            s.set(base(timeout=2.0))
            fixed = await c.expect(CLUSTER)
            assert fixed.version not in (bad.version, good.version)

    run(scenario)


def test_cluster_change_is_followed_by_fresh_cla_even_if_endpoints_did_not_change() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(base(timeout=5.0))
            cds = await c.expect(CLUSTER)
            eds = await c.expect(ENDPOINT)
            assert "a" in eds.names and "b" not in eds.names  # only the changed cluster's CLA
            await c.ack(cds)
            await c.ack(eds, ["a", "b"])
            await c.expect_nothing()

    run(scenario)


def test_only_changed_types_are_sent() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(r.replace(base(), r.cla("b", ("127.0.0.9", 9))))
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["b"]
            await c.ack(eds, ["a", "b"])
            await c.expect_nothing()

    run(scenario)


def test_push_order_cds_eds_lds_rds() -> None:
    async def scenario() -> None:
        async with Serving(base(r.route("rc", "a"))) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            await c.request(ROUTE, ["rc"])
            await c.ack(await c.expect(ROUTE), ["rc"])
            s.set(
                r.snapshot(
                    NODE,
                    r.cluster("a", 3.0),
                    r.cla("a", ("127.0.0.3", 3)),
                    r.cluster("b"),
                    r.cla("b", UP),
                    r.http_listener("out", "127.0.0.1", 10002, "a"),
                    r.route("rc", "b"),
                )
            )
            order = [(await c.expect()).type_url for _ in range(4)]
            assert order == [CLUSTER, ENDPOINT, LISTENER, ROUTE]

    run(scenario)


def test_new_cluster_gets_its_cla_before_the_listener_that_uses_it() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            s.set(base(r.cluster("c"), r.cla("c", UP), r.http_listener("out-c", "127.0.0.1", 10003, "c")))
            cds = await c.expect(CLUSTER)
            assert cds.names == ["a", "b", "c"]
            await c.ack(cds)
            await c.expect_nothing(0.2)  # LDS waits: Envoy has not asked for c's CLA yet
            await c.request(ENDPOINT, ["a", "b", "c"], nonce=c.last[ENDPOINT].nonce, version=c.last[ENDPOINT].version)
            eds = await c.expect(ENDPOINT)
            assert eds.names == ["c"]
            lds = await c.expect(LISTENER)
            assert lds.names == ["out", "out-c"]

    run(scenario)


def test_cluster_removal_waits_for_the_listener_update() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            # Listener "out" moves from a to b and cluster a goes away.
            s.set(r.snapshot(NODE, r.cluster("b"), r.cla("b", UP), r.http_listener("out", "127.0.0.1", 10001, "b")))
            lds = await c.expect(LISTENER)  # clusters unchanged apart from the removal: nothing before LDS
            await c.expect_nothing(0.2)  # a stays until the listener update is acknowledged
            await c.ack(lds)
            cds = await c.expect(CLUSTER)
            assert cds.names == ["b"]

    run(scenario)


def test_nothing_is_pushed_for_an_unwatched_type() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await connect_all(c)
            await until(all_answered(s))
            await c.request(ENDPOINT, [], nonce=c.last[ENDPOINT].nonce, version=c.last[ENDPOINT].version)
            await c.expect_nothing(0.2)
            s.set(r.replace(base(), r.cla("a", ("127.0.0.7", 7)), r.cla("b", ("127.0.0.7", 7))))
            await c.expect_nothing()

    run(scenario)


def test_snapshot_change_wakes_only_that_node() -> None:
    other = "default.other"

    async def scenario() -> None:
        async with Serving(base(), r.snapshot(other, r.cluster("x"))) as s, s.client(NODE) as c, s.client(other) as o:
            await c.request(CLUSTER)
            await c.ack(await c.expect(CLUSTER))
            await o.request(CLUSTER)
            first = await o.expect(CLUSTER)
            assert first.names == ["x"]  # its own snapshot, never another node's
            await o.ack(first)
            s.set(base(timeout=4.0))
            await c.expect(CLUSTER)
            await o.expect_nothing()

    run(scenario)


def test_removed_node_stream_ends_with_not_found() -> None:
    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request(CLUSTER)
            await c.ack(await c.expect(CLUSTER))
            s.cache.remove(NODE)
            code, details = await c.expect_error()
            assert code == grpc.StatusCode.NOT_FOUND
            assert "removed" in details
            await until(lambda: NODE not in s.cache.connected(), what="disconnect recorded")

    run(scenario)


def test_explicit_cds_names_get_only_those_clusters() -> None:
    """A client naming clusters (gRPC-xDS style) gets a subset; "*" or nothing means everything."""

    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request(CLUSTER, ["b"])
            only = await c.expect(CLUSTER)
            assert only.names == ["b"]
            await c.ack(only, ["b", "*"])
            everything = await c.expect(CLUSTER)
            assert everything.names == ["a", "b"]

    run(scenario)


def test_a_nonce_from_an_earlier_server_is_answered_like_an_initial_request() -> None:
    """Old Envoys re-sent their last nonce after reconnecting (envoy#30155): never mistake it for an ACK."""

    async def scenario() -> None:
        async with Serving(base()) as s, s.client(NODE) as c:
            await c.request(CLUSTER, nonce="0123456789ab-7-42", version="old")
            cds = await c.expect(CLUSTER)
            assert cds.names == ["a", "b"] and not cds.nonce.startswith("0123456789ab")

    run(scenario)


def test_an_expired_gate_does_not_make_the_stream_spin() -> None:
    """A CDS response Envoy takes long to ACK (10k clusters) must not turn into a wake-up loop."""
    stream = SotwStream(NODE, NodeStatus(NODE))
    stream.handle(bytes(DiscoveryRequest(type_url=CLUSTER)), time.monotonic())
    sent_at = time.monotonic()
    assert stream.responses(base(), sent_at)  # CDS sent, not ACKed yet
    assert stream.deadline() is not None  # the gate will need one wake-up...
    stream.cds_sent_at = time.monotonic() - GATE_TIMEOUT - 0.1
    stream.eds_wait.clear()
    assert stream.deadline() is None  # ...and none once it has given up
