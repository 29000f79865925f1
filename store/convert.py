"""Records ↔ the documents the loader reads ↔ Kuma's REST JSON.

One path for every input: a stored record becomes a universal document and goes through the same
loader and validation as a file, so the API, the folder and the database give the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from meshxds.resources.errors import Origin, Problem
from meshxds.resources.loader import AnyResource, Loaded, parse_document
from meshxds.store.model import FLAT_KINDS, Key, Record, is_global

STORE_FILE = "store"  # the "file" part of a problem about a stored resource


def key_of(res: AnyResource) -> Key:
    return Key(res.kind, "" if is_global(res.kind) else getattr(res, "mesh", "default"), res.name)


def document(record: Record) -> dict[str, Any]:
    """The universal document the loader reads (status stays with the control plane)."""
    doc: dict[str, Any] = {"type": record.type, "name": record.name}
    if record.mesh:
        doc["mesh"] = record.mesh
    if record.labels:
        doc["labels"] = dict(record.labels)
    doc["spec"] = dict(record.spec)
    return doc


def parse_record(record: Record, index: int, zone: str) -> tuple[Loaded | None, list[Problem]]:
    item, problems = parse_document(document(record), Origin(STORE_FILE, index), zone)
    return (item if isinstance(item, Loaded) else None), problems


def record_of(item: Loaded, version: int = 0, creation: datetime | None = None) -> Record:
    """What the store keeps of a validated resource: its spec as given, its labels with the computed ones."""
    res = item.resource
    body = res.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"status"})
    spec = body.get("spec", {})
    record = Record(key=key_of(res), spec=spec, labels=dict(res.labels), version=version)
    return replace(record, creation_time=creation) if creation else record


def parse_body(body: Any, zone: str, where: str = "request body") -> tuple[Loaded | None, list[Problem]]:
    """A document from the API or ``meshxds apply``: universal (flat or with spec) or Kubernetes form."""
    item, problems = parse_document(body, Origin(where, 1), zone)
    return (item if isinstance(item, Loaded) and not problems else None), problems


def timestamp(t: datetime) -> str:
    """Kuma's RFC 3339 times in UTC (``2024-01-01T10:00:00.123456Z``)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rest_json(record: Record, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kuma's REST shape: new-style types nest ``spec``; Mesh, Dataplane and ZoneIngress are flattened.

    Field order follows rest/v1alpha1/resource.go: type, mesh, name, creationTime, modificationTime,
    labels, spec, status.
    """
    out: dict[str, Any] = {"type": record.type}
    if record.mesh:
        out["mesh"] = record.mesh
    out["name"] = record.name
    out["creationTime"] = timestamp(record.creation_time)
    out["modificationTime"] = timestamp(record.modification_time)
    if record.labels:
        out["labels"] = dict(record.labels)
    if record.type in FLAT_KINDS:
        out.update(record.spec)
        return out
    out["spec"] = dict(record.spec)
    shown = status if status is not None else dict(record.status)
    if shown:
        out["status"] = shown
    return out


def oldest_first(records: Sequence[Record]) -> list[Record]:
    """Kuma's "oldest wins" order: creation time, then name."""
    return sorted(records, key=lambda r: (r.creation_time, r.key.type, r.key.mesh, r.key.name))
