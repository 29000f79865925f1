"""``meshxds dump PATH... --node MESH.NAME`` (or ``--all-nodes --out-dir DIR``): snapshots as JSON."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from meshxds.control.report import report
from meshxds.resources import load_catalog
from meshxds.snapshots.builder import SnapshotError, snapshots_for
from meshxds.snapshots.dump import to_json


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)  # errors and warnings on stderr; stdout stays pure JSON
    if result.catalog is None:
        print(f"{len(result.errors)} error(s)", file=sys.stderr)
        return 1
    catalog = result.catalog
    if args.dns_port:  # as if every sidecar's node metadata asked for a DNS listener on this port
        catalog = replace(catalog, dns_ports=dict.fromkeys(catalog.node_ids(), args.dns_port))
    try:
        snapshots = snapshots_for(catalog)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.all_nodes:
        if not args.out_dir:
            print("error: --all-nodes needs --out-dir DIR", file=sys.stderr)
            return 2
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for node_id in sorted(snapshots):
            (out / f"{node_id}.json").write_text(to_json(snapshots[node_id]))
        print(f"wrote {len(snapshots)} snapshot(s) to {out}", file=sys.stderr)
        return 0
    snapshot = snapshots.get(args.node)
    if snapshot is None:
        known = ", ".join(sorted(snapshots)) or "(none)"
        print(f"error: unknown node {args.node!r}; known nodes: {known}", file=sys.stderr)
        return 1
    sys.stdout.write(to_json(snapshot))
    return 0
