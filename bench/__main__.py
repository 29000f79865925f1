"""``python -m bench``: build, push and apply a synthetic mesh; print one table (or ``--json``).

Default scale is issue #5's target: 1,000 services x 3 Dataplanes (3,000 proxies), Exclusive mode,
every proxy reaching every service, 3,000 ADS streams, and a real Envoy at 1,000 and 10,000 clusters.
``--quick`` is a small smoke run (seconds), used by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import build as b
from bench import floor, mesh, mtls, push
from bench import streams as stream_state
from bench.mesh import MeshSpec
from meshxds.security.issuer import IdentityIssuer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--dataplanes-per-service", type=int, default=3)
    p.add_argument("--ports", type=int, default=1, help="inbound ports per service")
    p.add_argument("--mode", choices=mesh.MODES, default="Exclusive")
    p.add_argument("--fanout", type=int, default=0, help="services each proxy reaches (reachableBackends); 0 = all")
    p.add_argument("--streams", type=int, default=0, help="concurrent ADS streams; 0 = one per proxy")
    p.add_argument("--streams-per-connection", type=int, default=1)
    p.add_argument(
        "--envoy-clusters", default=None, help="comma-separated (default 1000,10000; 50 with --quick); '' to skip"
    )
    p.add_argument("--mtls", action="store_true", help="builtin mTLS + allow-all MeshTrafficPermission on the mesh")
    p.add_argument("--no-push", action="store_true", help="skip the ADS stream benchmark")
    p.add_argument("--no-mtls-ratio", action="store_true", help="skip building the mesh with mTLS on and off")
    p.add_argument(
        "--state-streams", type=int, default=20, help="streams whose state-machine memory is traced; 0 to skip"
    )
    p.add_argument("--no-build", action="store_true", help="skip the mesh stages (build, encode, push, profile)")
    p.add_argument("--profile", action="store_true", help="cProfile the full build and show where the time goes")
    p.add_argument("--quick", action="store_true", help="small smoke size: 10 services x 2, 20 streams, Envoy at 50")
    p.add_argument(
        "--edit-streams", default=None, help="edit -> ACK stage (bench/edit.py) at these stream counts; '' to skip"
    )
    p.add_argument("--edit-rounds", type=int, default=5, help="edits per edit -> ACK run")
    p.add_argument(
        "--no-edit-api", dest="edit_api", action="store_false", help="skip edit -> ACK through the API (PostgreSQL)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--save", help="also write the JSON results here, after every stage")
    args = p.parse_args(argv)
    if args.quick:
        args.services, args.dataplanes_per_service = 10, 2
    if args.envoy_clusters is None:
        args.envoy_clusters = "50" if args.quick else "1000,10000"
    if args.edit_streams is None:
        args.edit_streams = "" if args.quick or args.no_build else "300,3000"
    return args


def machine() -> dict[str, Any]:
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line), "0")
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def snapshot_overhead(snapshots: dict[str, Any]) -> float:
    """Bytes per proxy of its own snapshot containers (dicts of references; the shared entries not counted)."""
    total = 0
    for snap in snapshots.values():
        total += sys.getsizeof(snap) + sys.getsizeof(snap.resources) + sys.getsizeof(snap.versions)
        total += sum(sys.getsizeof(d) for d in snap.resources.values())
    return total / max(1, len(snapshots))


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = MeshSpec(args.services, args.dataplanes_per_service, args.ports, args.mode, args.fanout, args.mtls)
    out: dict[str, Any] = {"machine": machine(), "command": "python -m bench " + " ".join(sys.argv[1:])}
    if not args.no_build:
        mesh_stages(args, spec, out)
    edit_stage(args, out)
    out["envoy"] = []
    for n in [int(x) for x in args.envoy_clusters.split(",") if x.strip()]:
        from bench import envoy

        out["envoy"].append(envoy.apply(n).__dict__)
        save(args, out)
    return out


def edit_stage(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Edit -> ACK from the write, through the real folder service and the store service (unless --no-edit-api)."""
    from bench import edit

    out["edit"] = []
    for n in [int(x) for x in args.edit_streams.split(",") if x.strip()]:
        out["edit"].append(edit.run("folder", args.services, n, args.edit_rounds, lag_rebuilds=n >= 3000))
        save(args, out)
    if args.edit_api and args.edit_streams.strip():
        from tests.support.postgres import bindir

        if bindir() is None:
            out["edit_api_skipped"] = "PostgreSQL server not installed (apt-get install postgresql)"
            return
        streams = int(args.edit_streams.split(",")[0])
        out["edit"].append(edit.run("api", args.services, streams, args.edit_rounds, lag_rebuilds=False))
        save(args, out)


def save(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Keep partial results of a long run (``--save``)."""
    if args.save:
        Path(args.save).write_text(json.dumps(out, indent=2, default=str))


def mesh_stages(args: argparse.Namespace, spec: MeshSpec, out: dict[str, Any]) -> None:
    out["mesh"] = {**spec.__dict__, "proxies": spec.proxies}
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-") as tmp:
        path, write_s = b.timed(lambda: mesh.write(spec, Path(tmp)))
        catalog, load_s = b.timed(lambda: mesh.load(path))
        # With --mtls: every identity is issued first (a first start); the builds below then reuse them,
        # as a restart with a state directory does, so they time translation + secrets, not key generation.
        issuer = IdentityIssuer()
        if spec.mtls:
            creds, issue_s = b.timed(lambda: issuer.credentials(catalog))
            n = len(creds.identities)
            out["security"] = {"identities": n, "issue_s": issue_s, "identities_per_s": n / issue_s}
        builder = b.Builder(issuer)  # the server's: the rebuild below reuses what the endpoint change left alone
        cpu = time.process_time()
        before, build_s = b.build(catalog, builder, served=True)  # cold: the first build in this process
        build_cpu = time.process_time() - cpu
        _, warm_s = b.build(catalog, b.Builder(issuer))  # a fresh Builder again: pydantic schemas and caches are warm
        nogc_s = b.build_without_gc(catalog, issuer)  # the same, with the collector frozen and off
        resources = b.distinct_messages(before)
        changed_catalog = mesh.with_endpoint_change(spec, Path(tmp), catalog)
        cpu = time.process_time()
        after, rebuild_s = b.build(changed_catalog, builder, served=True)
        rebuild_cpu = time.process_time() - cpu
    out["build"] = {
        "yaml_write_s": write_s,
        "catalog_load_s": load_s,
        "full_build_s": build_s,
        "full_build_cpu_s": build_cpu,  # CPU time of this process: less sensitive to other load on the machine
        "endpoint_change_rebuild_cpu_s": rebuild_cpu,
        "warm_build_s": warm_s,
        "warm_build_gc_off_s": nogc_s,
        "snapshots": len(before),
        "distinct_resources": {b.SHORT_NAMES[t]: len(v) for t, v in resources.items()},
        "resources_per_proxy": round(sum(len(s.get(t)) for s in before.values() for t in b.TYPE_ORDER) / len(before)),
        "endpoint_change_rebuild_s": rebuild_s,
        "endpoint_change_snapshots_changed": b.changed_nodes(before, after),
        "rss_after_build_mb": push.rss_bytes() / 1e6,
        "snapshot_bytes_per_proxy": snapshot_overhead(before),
    }
    from bench import catalog as catalog_bench  # Catalog assembly from cached documents (``python -m bench.catalog``)

    out["catalog"] = catalog_bench.figures(spec)
    if not args.no_mtls_ratio and not spec.mtls:
        ratio = mtls.run(spec)
        out["mtls_ratio"] = {**ratio.__dict__, "ratio": ratio.ratio}
    rows = b.encode_speed(resources)
    out["encode"] = {
        "per_type": [{**r.__dict__, "speedup": r.speedup} for r in rows],
        "overall_speedup": b.overall_speedup(rows),
    }
    save(args, out)
    if not args.no_push:
        streams = args.streams or spec.proxies
        nodes = sorted(before)[:streams]
        rebuild = functools.partial(b.snapshots_for, catalog)  # a full build from scratch, for the loop lag
        result = asyncio.run(
            push.run(before, after, nodes, streams_per_connection=args.streams_per_connection, rebuild=rebuild)
        )
        out["push"] = result.__dict__
        out["push"]["floor"] = floor.run_for(before, nodes).__dict__  # the same streams and bytes, no xDS logic
        save(args, out)
    if args.state_streams:
        nodes = sorted(before)[: args.state_streams]
        out["stream_state"] = stream_state.run(before, after, nodes).__dict__
        save(args, out)
    if args.profile:
        prof = b.profile(lambda: b.snapshots_for(catalog))
        out["profile"] = {"total_s": prof.total_s, "by_category_s": prof.by_category, "top": prof.top}
        save(args, out)


Add = Callable[..., None]


def table(r: dict[str, Any]) -> str:
    """One table: metric | value | target | verdict."""
    rows: list[tuple[str, str, str, str]] = []

    def add(metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((metric, value, target, "" if ok is None else ("ok" if ok else "MISSED")))

    if "security" in r:
        sec = r["security"]
        add("identities issued (mTLS, EC P-256)", f"{sec['identities']} in {sec['issue_s']:.2f} s = "
            f"{sec['identities_per_s']:.0f}/s")  # fmt: skip
    if "build" in r:
        build_rows(r, add)
    if "mtls_ratio" in r:
        mr = r["mtls_ratio"]
        add("build with mTLS on / off (warm, best of 2)", f"{mr['on_s']:.2f} s / {mr['off_s']:.2f} s = "
            f"{mr['ratio']:.2f}x ({mr['identities']} identities)", "<= 1.3x", mr["ratio"] <= 1.3)  # fmt: skip
    if "push" in r:
        push_rows(r["push"], add)
    if "stream_state" in r:
        ss = r["stream_state"]
        kb, after = ss["bytes_per_stream"] / 1024, ss["bytes_after_push"] / 1024
        add("xDS state per stream (tracemalloc)", f"{kb:.0f} KB synced, {after:.0f} KB after a push "
            f"({ss['streams']} streams)")  # fmt: skip
    for result in r.get("edit", []):
        from bench import edit

        for row in edit.rows(result):
            rows.append(row)
    if "edit_api_skipped" in r:
        add("edit -> ACK through the API", f"skipped: {r['edit_api_skipped']}")
    for e in r["envoy"]:
        share = e["send_s"] / e["apply_s"] if e["apply_s"] else float("nan")
        target, ok = ("<= 10 %", share <= 0.10) if e["clusters"] >= 10000 else ("", None)
        add(f"Envoy apply {e['clusters']} clusters", f"{e['apply_s']:.2f} s; our send {e['send_s'] * 1000:.0f} ms "
            f"= {share:.1%} ({e['megabytes']:.1f} MB, {e['responses']} responses)", target, ok)  # fmt: skip
        add("  our send = framing + awaiting writes", f"{e['build_s'] * 1000:.0f} ms + {e['write_s'] * 1000:.0f} ms")
    if "profile" in r:
        for cat, secs in r["profile"]["by_category_s"].items():
            add(f"profile: {cat}", f"{secs:.2f} s of {r['profile']['total_s']:.2f} s (under cProfile)")
    widths = [max(len(row[i]) for row in [("metric", "value", "target", "verdict"), *rows]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(("metric", "value", "target", "verdict"), widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def build_rows(r: dict[str, Any], add: Add) -> None:
    m, bd = r["mesh"], r["build"]
    add("mesh", f"{m['services']} svc x {m['dataplanes_per_service']} DP x {m['ports']} port, {m['mode']}, "
        f"fanout {m['fanout'] or 'all'} = {m['proxies']} proxies")  # fmt: skip
    add("catalog load (YAML -> Catalog)", f"{bd['catalog_load_s']:.2f} s")
    add("full build, cold, as served (collector paused, then frozen)", f"{bd['full_build_s']:.2f} s "
        f"(CPU {bd['full_build_cpu_s']:.2f} s)", "<= 1.5 s", bd["full_build_s"] <= 1.5)  # fmt: skip
    add("  same catalog again (warm caches, GC on)", f"{bd['warm_build_s']:.2f} s")
    add("  warm, gc frozen + disabled", f"{bd['warm_build_gc_off_s']:.2f} s")
    add("  resources per proxy / distinct", f"{bd['resources_per_proxy']} / {sum(bd['distinct_resources'].values())}")
    add("one-endpoint-change rebuild", f"{bd['endpoint_change_rebuild_s']:.2f} s "
        f"(CPU {bd['endpoint_change_rebuild_cpu_s']:.2f} s, {bd['endpoint_change_snapshots_changed']} snapshots "
        "changed)", "<= 0.5 s",
        bd["endpoint_change_rebuild_s"] <= 0.5)  # fmt: skip
    if "catalog" in r:
        c = r["catalog"]
        add("  catalog from cached documents: full / one endpoint changed", f"{c['full_ms']:.0f} ms / "
            f"{c['one_change_ms']:.0f} ms (CPU {c['full_cpu_ms']:.0f} / {c['one_change_cpu_ms']:.0f} ms)")  # fmt: skip
    for row in r["encode"]["per_type"]:
        add(f"encode {row['kind']} (us/resource)", f"{row['ours_us']:.1f} vs bytes() {row['bytes_us']:.0f} "
            f"= {row['speedup']:.0f}x")  # fmt: skip
    sp = r["encode"]["overall_speedup"]
    add("encode speedup (whole build)", f"{sp:.0f}x", ">= 50x", sp >= 50)
    add("server RSS after build", f"{bd['rss_after_build_mb']:.0f} MB")
    add("per-proxy snapshot containers", f"{bd['snapshot_bytes_per_proxy'] / 1024:.1f} KB")


def push_rows(p: dict[str, Any], add: Add) -> None:
    names = f"{p['eds_streams']} with EDS, {p['rds_streams']} with RDS names, {p['reconnects']} reconnects"
    add("ADS streams synced (initial config)", f"{p['streams']} in {p['sync_s']:.1f} s ({names})")
    limit = 0.25 if p["streams"] <= 300 else 0.5  # the issue's targets at 300 and 3,000 streams
    ok = p["p99_s"] <= limit and p["acked"] == p["affected"]
    add("push-to-ACK after 1 endpoint change (from the cache)", f"p50 {p['p50_s'] * 1000:.0f} ms, "
        f"p99 {p['p99_s'] * 1000:.0f} ms ({p['acked']}/{p['affected']} ACKed)", f"p99 <= {limit * 1000:.0f} ms",
        ok)  # fmt: skip
    add("  of which the server wrote the new EDS response", f"p50 {p['sent_p50_s'] * 1000:.0f} ms, "
        f"p99 {p['sent_p99_s'] * 1000:.0f} ms")  # fmt: skip
    add("initial sync of all streams", f"{p['sync_s']:.1f} s (server CPU {p['sync_cpu_s']:.1f} s, client CPU "
        f"{p['client_cpu_s']:.1f} s)", "<= 5 s", p["sync_s"] <= 5.0)  # fmt: skip
    if "floor" in p:
        f = p["floor"]
        p50, p99 = f["push_p50_s"] * 1000, f["push_p99_s"] * 1000
        add("transport floor: the same bytes, grpc.aio alone", f"sync {f['sync_s']:.1f} s; a small message to "
            f"every stream: reply p50 {p50:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip
    kb = p["rss_per_stream"] / 1024
    add("server RSS per connected stream", f"{kb:.0f} KB", "<= 100 KB", kb <= 100)
    if p.get("loop_lag_s") is not None:
        lag = p["loop_lag_s"] * 1000
        add("worst loop lag, full build in a thread", f"{lag:.0f} ms (build {p['lag_build_s']:.1f} s)", "<= 50 ms",
            lag <= 50)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = parse_args(argv)
    started = time.monotonic()
    result = run(args)
    result["bench_wall_s"] = time.monotonic() - started
    save(args, result)
    print(json.dumps(result, indent=2, default=str) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
