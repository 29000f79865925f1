"""``meshxds delete TYPE NAME [--mesh M]``, like ``kumactl delete`` (app/kumactl/cmd/delete/delete.go)."""

from __future__ import annotations

import argparse
import sys

from meshxds.cli.client import ApiError, Client, resource_kind, resource_path
from meshxds.store.model import PLURALS


def run(args: argparse.Namespace) -> int:
    kind = resource_kind(args.type)
    if kind is None:
        print(f"error: unknown TYPE: {args.type}. Allowed values: {', '.join(PLURALS.values())}", file=sys.stderr)
        return 1
    client = Client.from_args(args)
    try:
        client.call("DELETE", resource_path(kind, args.mesh, args.name))
    except ApiError as exc:
        if exc.status == 404:
            print(f'error: there is no {kind} with name "{args.name}"', file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the API at {client.base}: {exc}", file=sys.stderr)
        return 1
    print(f'deleted {kind} "{args.name}"')
    return 0
