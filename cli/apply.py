"""``meshxds apply -f FILE|-``: create or update resources through the API, like ``kumactl apply``.

Documents (YAML or JSON, many per file, universal or Kubernetes form) are checked locally with the
loader first (app/kumactl/cmd/apply/apply.go: ``resource[i]: failed to parse resource``), then each is
PUT; the output line is kumactl's ``resource type="..." mesh="..." name="..." Created|Updated``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from meshxds.cli.client import ApiError, Client, resource_path
from meshxds.resources.errors import Origin
from meshxds.resources.loader import Loaded, parse_document, read_documents, resource_id
from meshxds.resources.rules import check_resource
from meshxds.store.convert import document, record_of


def read(source: str) -> tuple[list[tuple[int, Any]], list[str]]:
    """Documents of a file, or of standard input for ``-``; problems name the file as given."""
    if source != "-":
        docs, problems = read_documents(Path(source))
        return docs, [str(p) for p in problems]
    with tempfile.TemporaryDirectory(prefix="meshxds-apply-") as tmp:
        path = Path(tmp) / "stdin.yaml"
        path.write_text(sys.stdin.read())
        docs, problems = read_documents(path)
        return docs, [str(p).replace(str(path), "-", 1) for p in problems]


def run(args: argparse.Namespace) -> int:
    docs, problems = read(args.file)
    items: list[Loaded] = []
    for index, doc in docs:
        item, found = parse_document(doc, Origin(args.file, index), args.zone)
        if isinstance(item, Loaded):  # the per-resource rules too, as the control plane will run them
            what = resource_id(item.resource)
            found += [
                item.origin.problem(what, f.field, f.message) for f in check_resource(item.resource) if not f.warning
            ]
        problems += [str(p) for p in found if p.is_error]
        if isinstance(item, Loaded) and not any(p.is_error for p in found):
            items.append(item)
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        print("error: failed to validate some resources", file=sys.stderr)
        return 1
    if not items:
        print("error: no resource(s) passed to apply", file=sys.stderr)
        return 1
    client = Client.from_args(args)
    for item in items:
        record = record_of(item)
        body = document(record)
        what = f'resource type="{record.type}" mesh="{record.mesh}" name="{record.name}"'
        try:
            status, answer = client.call("PUT", resource_path(record.type, record.mesh, record.name), body)
        except ApiError as exc:
            print(f"error: {what}: failed server side: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: cannot reach the API at {client.base}: {exc}", file=sys.stderr)
            return 1
        for warning in (answer or {}).get("warnings", []) if isinstance(answer, dict) else []:
            print(f"Warning: {warning}", file=sys.stderr)
        print(f"{what} {'Created' if status == 201 else 'Updated'}")
    return 0
