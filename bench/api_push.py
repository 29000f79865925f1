"""``python -m bench.api_push --store postgres://...``: API write → Envoy ACK on the benchmark mesh.

The synthetic mesh (bench/mesh.py, default 1,000 services x 3 Dataplanes, Exclusive, every proxy
reaching every service) is written into an empty PostgreSQL database, a store-backed control plane
(``StoreService`` + Kuma's API) serves it in this process, and one real Envoy runs as a proxy of the
mesh. Each round PUTs one Dataplane of another service with a new address through the HTTP API and
waits until Envoy ACKs the endpoints that carry it. Printed: PUT time and PUT → ACK (p50, max).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import mesh
from bench.mesh import MeshSpec
from meshxds.api.app import start_api
from meshxds.control.background import Background
from meshxds.control.store_service import StoreService
from meshxds.demo.sidecar import Envoy
from meshxds.snapshots.snapshot import ENDPOINT
from meshxds.store.convert import parse_body, record_of
from meshxds.store.model import AlreadyExists
from meshxds.store.postgres import PostgresStore
from meshxds.xds.bootstrap import bootstrap_config


async def load(store: PostgresStore, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        item, problems = parse_body(doc, "default")
        if item is None:
            raise RuntimeError("; ".join(str(p) for p in problems))
        try:
            await store.create(record_of(item))
        except AlreadyExists:
            current = await store.get(record_of(item).key)
            await store.update(record_of(item, version=current.version))


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server (the Debian binaries, as the tests run them); yields an empty database's URL."""
    from tests.support.postgres import bindir, running_server

    binaries = bindir()
    if binaries is None:
        raise RuntimeError("PostgreSQL server not installed (apt-get install postgresql)")
    with running_server(binaries) as server:
        yield server.new_database()


def put(base: str, token: str, doc: dict[str, Any]) -> None:
    path = f"{base}/meshes/default/dataplanes/{doc['name']}"
    request = urllib.request.Request(path, data=json.dumps(doc).encode(), method="PUT")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status in (200, 201)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.api_push", description=__doc__)
    p.add_argument("--store", required=True, help="postgres://USER@HOST:PORT/DB (an empty database)")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--dataplanes-per-service", type=int, default=3)
    p.add_argument("--writes", type=int, default=10)
    args = p.parse_args(argv)
    spec = MeshSpec(services=args.services, dataplanes_per_service=args.dataplanes_per_service)
    bg = Background("bench-api")
    start = time.perf_counter()
    store = bg.run(PostgresStore.open(args.store))
    bg.run(load(store, mesh.documents(spec)), timeout=None)
    loaded = time.perf_counter() - start
    service = StoreService(store)
    start = time.perf_counter()
    bg.run(service.start("127.0.0.1", 0), timeout=None)
    first_build = time.perf_counter() - start
    runner, port = bg.run(start_api(service, "127.0.0.1", 0))
    token = bg.run(store.get_state("admin-token"))
    assert token is not None
    base = f"http://127.0.0.1:{port}"
    node = f"default.{mesh.dataplane_name(0, 0)}"
    envoy = Envoy(bootstrap_config(node, ads_port=service.ads.port), name="bench-api-envoy", log_level="warning")
    envoy.start()

    def acked_current() -> float | None:
        snap = service.cache.get(node)
        ts = service.cache.status.get(node)
        if snap is None or ts is None or ENDPOINT not in ts.types:
            return None
        t = ts.types[ENDPOINT]
        return t.acked_at if t.acked_version == snap.versions.get(ENDPOINT) else None

    try:
        deadline = time.monotonic() + 600
        while bg.call(acked_current) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        puts: list[float] = []
        acks: list[float] = []
        for i in range(args.writes):
            # Each write moves one Dataplane of another service (and back on the next pass): one endpoint changes.
            others = spec.services - 1
            doc = mesh.dataplane(spec, 1 + i % others, 0, moved=(i // others) % 2 == 0)
            t0 = time.time()
            put(base, token["token"], doc)
            puts.append(time.time() - t0)
            while True:
                acked = bg.call(acked_current)
                if acked is not None and acked > t0:
                    acks.append(acked - t0)
                    break
                if time.time() - t0 > 60:
                    status = bg.call(lambda: service.cache.node_status(node).to_json(service.cache.get(node)))
                    raise RuntimeError(f"no ACK within 60 s: {status}")
                time.sleep(0.002)
    finally:
        envoy.stop()
        bg.run(runner.cleanup())
        bg.run(service.stop())
        bg.close()
    rows = [
        ("mesh", f"{spec.services} svc x {spec.dataplanes_per_service} DP, Exclusive = {spec.proxies} proxies"),
        ("store load (records via the store)", f"{loaded:.1f} s"),
        ("first build (store -> snapshots)", f"{first_build:.1f} s"),
        ("API PUT (HTTP round trip)", f"p50 {1000 * statistics.median(puts):.0f} ms, max {1000 * max(puts):.0f} ms"),
        (
            "API PUT -> Envoy ACK (EDS)",
            f"p50 {1000 * statistics.median(acks):.0f} ms, max {1000 * max(acks):.0f} ms ({len(acks)} writes)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
