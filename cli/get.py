"""``meshxds get TYPE [NAME] [--mesh M] [-o table|yaml|json]``, like ``kumactl get``.

Table columns follow app/kumactl/cmd/get (``MESH NAME AGE``; ``NAME AGE`` for global types), AGE
since modificationTime; ``-o yaml|json`` prints the API's list ``{total, items, next}`` or one resource.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import yaml

from meshxds.cli.client import ApiError, Client, resource_kind, resource_path
from meshxds.store.model import PLURALS, is_global


def age(stamp: str | None, now: datetime | None = None) -> str:
    """kumactl's AGE: ``Ns``, ``Nm``, ``Nh`` or ``Nd``."""
    if not stamp:
        return "unknown"
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(items: list[dict[str, Any]], global_kind: bool) -> str:
    header = ["NAME", "AGE"] if global_kind else ["MESH", "NAME", "AGE"]
    rows = [header]
    for item in items:
        cells = [item.get("name", ""), age(item.get("modificationTime"))]
        rows.append(cells if global_kind else [item.get("mesh", ""), *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


def show(body: Any, output: str) -> str:
    if output == "json":
        return json.dumps(body, indent=2) + "\n"
    return yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def run(args: argparse.Namespace) -> int:
    kind = resource_kind(args.type)
    if kind is None:
        print(f"error: unknown TYPE: {args.type}. Allowed values: {', '.join(PLURALS.values())}", file=sys.stderr)
        return 1
    client = Client.from_args(args)
    path = resource_path(kind, args.mesh, args.name)
    if args.name is None:
        path += f"?size={args.size}" + (f"&offset={args.offset}" if args.offset else "")
    try:
        body = client.get(path)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the API at {client.base}: {exc}", file=sys.stderr)
        return 1
    if args.output != "table":
        sys.stdout.write(show(body, args.output))
        return 0
    items = [body] if args.name else body.get("items", [])
    sys.stdout.write(table(items, is_global(kind)))
    if args.name is None and body.get("next"):
        offset = str(body["next"]).split("offset=")[1].split("&")[0]
        print(f"\nRerun command with --offset={offset} argument to retrieve more resources")
    return 0
