"""``meshxds rules PATH... --node MESH.NAME``: per outbound, the merged policy values and where each came from
(Kuma's ``_rules`` inspect view), for people who want to know why a timeout is what it is."""

from __future__ import annotations

import argparse
import sys

import yaml

from meshxds.cli.validate import report
from meshxds.resources import load_catalog
from meshxds.translators.explain import rules_view


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)
    if result.catalog is None:
        print(f"{len(result.errors)} error(s)", file=sys.stderr)
        return 1
    view = rules_view(result.catalog, args.node)
    if view is None:
        known = ", ".join(result.catalog.node_ids()) or "(none)"
        print(f"error: unknown node {args.node!r}; known nodes: {known}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump(view, sort_keys=False, default_flow_style=False))
    return 0
