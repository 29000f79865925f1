"""A snapshot as Envoy-style JSON: protobuf canonical JSON per resource, sorted, byte-stable.

Used by ``meshxds dump`` and the golden tests. ``to_dict`` is slow (milliseconds per resource),
which is fine here: dumps are for people and tests, never on the serving path.
"""

from __future__ import annotations

import json
from typing import Any

from meshxds.snapshots.snapshot import SHORT_NAMES, TYPE_ORDER, Snapshot


def to_json_dict(snapshot: Snapshot) -> dict[str, Any]:
    """``{"version", "clusters", "endpoints", "listeners", "routes"}``, each list sorted by name."""
    out: dict[str, Any] = {"version": snapshot.version}
    for type_url in TYPE_ORDER:
        entries = snapshot.get(type_url)
        out[SHORT_NAMES[type_url]] = [canonical(entries[name].message, type_url) for name in sorted(entries)]
    return out


# Field JSON names betterproto2 camel-cases differently from protoc (a digit followed by a letter).
JSON_NAMES = {"consecutive5Xx": "consecutive5xx", "enforcingConsecutive5Xx": "enforcingConsecutive5xx"}


def _protoc_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {JSON_NAMES.get(k, k): _protoc_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_protoc_names(v) for v in value]
    return value


def canonical(message: Any, type_url: str) -> dict[str, Any]:
    """Canonical JSON of one resource with ``@type`` first, as Envoy's /config_dump shows it."""
    body: dict[str, Any] = _protoc_names(message.to_dict())
    return {"@type": type_url, **body}


def to_json(snapshot: Snapshot) -> str:
    return json.dumps(to_json_dict(snapshot), indent=2, sort_keys=True) + "\n"
