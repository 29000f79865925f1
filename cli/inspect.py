"""``meshxds inspect dataplane NAME --mesh M --type config|rules``: what the control plane gives a proxy."""

from __future__ import annotations

import argparse
import json
import sys

from meshxds.cli.client import ApiError, Client


def run(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    path = f"/meshes/{args.mesh}/dataplanes/{args.name}/_{args.type}"
    try:
        body = client.get(path)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the API at {client.base}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0
