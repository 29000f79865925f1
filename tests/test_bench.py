"""``python -m bench`` runs end to end at smoke size and prints its table; the mesh generator obeys its knobs.

Speed is never asserted here: only that every figure is produced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.mesh import MeshSpec, build_catalog, with_endpoint_change
from meshxds.snapshots.builder import snapshots_for
from meshxds.snapshots.snapshot import CLUSTER, ENDPOINT

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quick_bench_prints_every_figure() -> None:
    out = run_bench()
    lines = out.splitlines()
    assert lines[0].split(" | ")[0].strip() == "metric"
    assert set(lines[1]) <= {"-", "+"}
    metrics = [line.split(" | ")[0].strip() for line in lines[2:]]
    for wanted in (
        "full build, cold, as served (collector paused, then frozen)",
        "one-endpoint-change rebuild",
        "build with mTLS on / off (warm, best of 2)",
        "encode clusters (us/resource)",
        "encode endpoints (us/resource)",
        "encode listeners (us/resource)",
        "encode speedup (whole build)",
        "push-to-ACK after 1 endpoint change (from the cache)",
        "initial sync of all streams",
        "transport floor: the same bytes, grpc.aio alone",
        "server RSS per connected stream",
        "worst loop lag, full build in a thread",
        "xDS state per stream (tracemalloc)",
        "Envoy apply 50 clusters",
    ):
        assert wanted in metrics, out
    assert "(20/20 ACKed)" in out  # every stream got and ACKed the change
    assert "(20 with EDS, 20 with RDS names, 0 reconnects)" in out  # clients followed CDS->EDS and LDS->RDS
    assert "20 snapshots changed" in out


def test_quick_bench_json() -> None:
    data = json.loads(run_bench("--json", "--no-push", "--envoy-clusters", ""))
    assert data["mesh"]["proxies"] == 20
    assert data["build"]["snapshots"] == 20
    assert data["mtls_ratio"]["identities"] == 20 and data["mtls_ratio"]["on_s"] > 0
    assert data["encode"]["overall_speedup"] > 1
    assert {row["kind"] for row in data["encode"]["per_type"]} >= {"clusters", "endpoints", "listeners"}
    assert "push" not in data
    assert data["envoy"] == []


def test_fanout_limits_what_each_proxy_reaches(tmp_path: Path) -> None:
    spec = MeshSpec(services=6, dataplanes_per_service=2, fanout=2)
    snaps = snapshots_for(build_catalog(spec, tmp_path))
    assert len(snaps) == 12
    every = MeshSpec(services=6, dataplanes_per_service=2)
    full = snapshots_for(build_catalog(every, tmp_path))
    for node, snap in snaps.items():
        assert len(snap.get(ENDPOINT)) == 2, node  # two reachable services, one CLA each
        assert len(full[node].get(ENDPOINT)) == 6
        assert len(snap.get(CLUSTER)) < len(full[node].get(CLUSTER))


def test_endpoint_change_touches_one_service(tmp_path: Path) -> None:
    spec = MeshSpec(services=3, dataplanes_per_service=2)
    catalog = build_catalog(spec, tmp_path)
    before = snapshots_for(catalog)
    after = snapshots_for(with_endpoint_change(spec, tmp_path, catalog))
    changed = {
        name
        for node in before
        for name, entry in after[node].get(ENDPOINT).items()
        if before[node].get(ENDPOINT)[name].version != entry.version
    }
    assert len(changed) == 1
