"""``meshxds demo [PATH] [--once] [--delta]``: the server, real Envoy sidecars and apps on one machine.

The demo itself lives in ``demo.runner``; this command first checks that Envoy (the ``demo`` extra)
is installed, so a plain install gets one line saying how to get it instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys

from meshxds.demo import runner
from meshxds.demo.sidecar import EnvoyMissing, envoy_binary


def run(args: argparse.Namespace) -> int:
    try:
        envoy_binary()
    except EnvoyMissing as exc:
        print(f"meshxds demo: {exc}", file=sys.stderr)
        return 2
    return runner.run(args)
