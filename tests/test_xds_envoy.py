"""The ADS server against a real Envoy with hand-made snapshots: NACK handling and server restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshxds.snapshots.snapshot import CLUSTER, Snapshot
from meshxds.xds.bootstrap import bootstrap_config
from tests.support import xdsres as r
from tests.support.ads import ServerThread
from tests.support.envoy import Envoy
from tests.support.net import echo_server, free_port, http_get
from tests.support.poll import wait_until
from tests.support.steady import SteadyClient

NODE = "default.web-1"


def world(up_port: int, listen_port: int, timeout: float = 1.0, extra: tuple[r.Entry, ...] = ()) -> Snapshot:
    return r.snapshot(
        NODE,
        r.cluster("backend", timeout),
        r.cla("backend", ("127.0.0.1", up_port)),
        r.http_listener("out", "127.0.0.1", listen_port, "backend"),
        *extra,
    )


@pytest.fixture(params=["sotw", "delta"])
def delta(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "delta")


@pytest.fixture
def upstream() -> Iterator[int]:
    with echo_server(body="hello from backend") as app:
        yield app.port


def test_rejected_snapshot_is_nacked_once_recorded_and_envoy_keeps_serving(
    delta: bool, upstream: int, tmp_path: Path
) -> None:
    listen = free_port()
    with ServerThread() as server:
        server.set(world(upstream, listen))
        with Envoy(bootstrap_config(NODE, ads_port=server.port, delta=delta), tmp_path) as envoy:
            envoy.wait_ready()
            assert http_get("127.0.0.1", listen) == (200, "hello from backend")
            good = envoy.dynamic_clusters()["backend"]["version_info"]
            server.set(world(upstream, listen, timeout=0))  # connect_timeout 0: Envoy's validation rejects it
            wait_until(lambda: server.status(NODE)["nacks"] == 1, what="the NACK")
            status = server.status(NODE)
            assert "ConnectTimeout" in status["lastNack"]["message"]
            assert status["lastNack"]["type"] == "clusters"
            sent = status["types"]["clusters"]["responses"]
            time.sleep(0.5)  # give a NACK loop the chance to show itself
            after = server.status(NODE)
            assert after["nacks"] == 1 and after["types"]["clusters"]["responses"] == sent
            assert envoy.stat("cluster_manager.cds.update_rejected") == 1
            assert envoy.dynamic_clusters()["backend"]["version_info"] == good
            assert http_get("127.0.0.1", listen) == (200, "hello from backend")
            # A fixed snapshot is accepted and the NACK stays on record.
            fixed = world(upstream, listen, timeout=2.0)
            server.set(fixed)
            wait_until(lambda: envoy.dynamic_clusters()["backend"]["cluster"]["connect_timeout"] == "2s")
            accepted = (fixed.versions[CLUSTER], fixed.get(CLUSTER)["backend"].version)  # SotW / Delta
            wait_until(lambda: server.status(NODE)["types"]["clusters"]["acked"] in accepted, what="the fix ACKed")
            final = server.status(NODE)
            assert final["nacks"] == 1 and final["lastNack"] is not None


def test_server_restart_reconnects_and_converges_without_losing_traffic(
    delta: bool, upstream: int, tmp_path: Path
) -> None:
    listen = free_port()
    snap = world(upstream, listen)
    with ServerThread() as server:
        server.set(snap)
        with Envoy(bootstrap_config(NODE, ads_port=server.port, delta=delta), tmp_path) as envoy:
            envoy.wait_ready()
            wait_until(lambda: http_get("127.0.0.1", listen)[0] == 200, what="the listener")
            with SteadyClient(lambda: http_get("127.0.0.1", listen)) as client:
                wait_until(lambda: client.ok > 20, what="steady traffic")
                server.restart(keep_cache=False)  # a new process: empty cache, new nonces, same port
                server.set(snap)
                wait_until(lambda: server.status(NODE)["connected"], 10.0, what="Envoy reconnected")
                wait_until(lambda: envoy.stat("control_plane.connected_state") == 1, 5.0, what="Envoy connected")
                wait_until(lambda: not server.status(NODE)["types"]["clusters"]["pending"], what="CDS acked again")
                # Converged: a change after the restart reaches Envoy.
                extra = (r.cluster("extra"), r.cla("extra", ("127.0.0.1", upstream)))
                server.set(world(upstream, listen, extra=extra))
                wait_until(lambda: "extra" in envoy.dynamic_clusters() and not envoy.warming_clusters(), what="extra")
                before = client.ok
                wait_until(lambda: client.ok > before + 20, what="traffic after the restart")
            assert client.failures == [], client.failures[:5]
            assert envoy.stat("cluster_manager.cds.update_rejected") == 0
