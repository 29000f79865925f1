"""``meshxds diff OLD_PATH NEW_PATH [--node MESH.NAME] [-o text|json]``: what every proxy would receive differently.

Exit 0: no proxy's configuration differs; 1: something differs (like ``diff(1)``); 2: bad input.
"""

from __future__ import annotations

import argparse
import sys

from meshxds.migrate.diff import diff_snapshots, render_json, render_text
from meshxds.migrate.inputs import InputError, load


def run(args: argparse.Namespace) -> int:
    try:
        old = load([args.old], zone=args.zone)
        new = load([args.new], zone=args.zone)
    except InputError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    if args.node is not None and args.node not in old.snapshots and args.node not in new.snapshots:
        known = ", ".join(sorted(set(old.snapshots) | set(new.snapshots))) or "(none)"
        print(f"error: unknown node {args.node!r}; known nodes: {known}", file=sys.stderr)
        return 2
    diffs = diff_snapshots(old.snapshots, new.snapshots, args.node)
    sys.stdout.write(render_json(diffs) if args.output == "json" else render_text(diffs))
    return 1 if diffs else 0
