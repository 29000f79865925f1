"""``meshxds explain PATH... --node MESH.NAME DESTINATION``: why the proxy has that destination or not.

Exit 0: the proxy has it; 1: it does not (the last line says why); 2: bad input or unknown node.
"""

from __future__ import annotations

import argparse
import sys

from meshxds.migrate.explain import explain
from meshxds.migrate.inputs import InputError, load


def run(args: argparse.Namespace) -> int:
    try:
        answer = explain(load(args.paths, zone=args.zone), args.node, args.destination)
    except InputError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    sys.stdout.write(answer.text())
    return 0 if answer.present else 1
