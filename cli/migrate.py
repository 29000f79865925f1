"""``meshxds migrate plan PATH --mesh M --to MODE``, and the parsers of the migration commands
(``diff``, ``migrate``, ``explain``) so ``cli/main.py`` only has to call ``add_parsers``.

``plan`` exits 0 when nothing breaks, 1 when something does (listed) or, with ``--require-idle``, while
traffic still flows to a destination that disappears; 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from meshxds.resources.model import MeshServicesMode

MODES = [m.value for m in MeshServicesMode]


def add_parsers(sub: Any, commands: dict[str, str], zone_help: str) -> None:
    p = sub.add_parser("diff", help=commands["diff"])
    p.add_argument("old", metavar="OLD_PATH", help="resource folder or file before the change")
    p.add_argument("new", metavar="NEW_PATH", help="resource folder or file after the change")
    p.add_argument("--node", help="only this proxy, <mesh>.<dataplane name>")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument("--zone", default="default", help=zone_help)

    p = sub.add_parser("migrate", help=commands["migrate"])
    msub = p.add_subparsers(dest="migrate_command", required=True)
    plan = msub.add_parser("plan", help="what switching a mesh's meshServices.mode would change")
    plan.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders")
    plan.add_argument("--mesh", default="default", help="the mesh to switch (default: default)")
    plan.add_argument("--to", required=True, choices=MODES, help="the meshServices.mode to plan for")
    plan.add_argument("--from", dest="from_mode", choices=MODES, help="plan from this mode instead of the files'")
    plan.add_argument("-o", "--output", choices=("text", "json"), default="text")
    plan.add_argument("--zone", default="default", help=zone_help)
    plan.add_argument("--server", help="a running `meshxds serve`'s debug URL, for live traffic per destination")
    plan.add_argument("--require-idle", action="store_true", help="fail while traffic flows to what disappears")

    p = sub.add_parser("explain", help=commands["explain"])
    p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders")
    what = "cluster name, [MeshService] NAME[:PORT], kuma.io/service=NAME, VIP[:PORT] or hostname"
    p.add_argument("destination", metavar="DESTINATION", help=what)
    p.add_argument("--node", required=True, help="node id, <mesh>.<dataplane name>")
    p.add_argument("--zone", default="default", help=zone_help)


def run(args: argparse.Namespace) -> int:
    from meshxds.migrate.inputs import InputError
    from meshxds.migrate.plan import make_plan
    from meshxds.migrate.render import render_json, render_text
    from meshxds.migrate.traffic import fetch

    if args.require_idle and not args.server:
        print("error: --require-idle needs --server URL (a running meshxds serve's debug port)", file=sys.stderr)
        return 2
    try:
        from_mode = MeshServicesMode(args.from_mode) if args.from_mode else None
        traffic = fetch(args.server) if args.server else None
        plan = make_plan(args.paths, args.mesh, MeshServicesMode(args.to), args.zone, traffic, from_mode)
    except InputError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(plan) if args.output == "json" else render_text(plan))
    return 1 if plan.breaks or (args.require_idle and plan.busy_losses) else 0
