"""What every proxy would receive differently: per resource, a unified diff of ``meshxds dump``'s JSON.

Resources are compared by their encoded bytes first (``Entry.version``), so only the ones that differ are
rendered to JSON (``to_dict`` costs milliseconds per resource). The snapshot's ``version`` is left out: it
differs whenever anything else does and says nothing on its own.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshxds.snapshots.dump import canonical
from meshxds.snapshots.snapshot import SHORT_NAMES, TYPE_ORDER, Entry, Snapshot

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"


@dataclass(frozen=True)
class ResourceDiff:
    type: str  # clusters | endpoints | listeners | routes
    name: str
    change: str  # added | removed | changed
    diff: str  # unified diff of the resource's dump JSON

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "change": self.change, "diff": self.diff}


@dataclass(frozen=True)
class ProxyDiff:
    node: str
    change: str  # added | removed | changed
    resources: tuple[ResourceDiff, ...]

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "change": self.change, "resources": [r.as_json() for r in self.resources]}


def _lines(entry: Entry | None) -> list[str]:
    if entry is None:
        return []
    return json.dumps(canonical(entry.message, entry.type_url), indent=2, sort_keys=True).splitlines()


def resource_diff(node: str, type_url: str, name: str, old: Entry | None, new: Entry | None) -> ResourceDiff:
    short = SHORT_NAMES[type_url]
    change = ADDED if old is None else REMOVED if new is None else CHANGED
    label = f"{node}/{short}/{name}"
    before = f"old/{label}" if old is not None else "/dev/null"
    after = f"new/{label}" if new is not None else "/dev/null"
    lines = difflib.unified_diff(_lines(old), _lines(new), before, after, lineterm="")
    return ResourceDiff(short, name, change, "\n".join(lines) + "\n")


def proxy_diff(node: str, old: Snapshot | None, new: Snapshot | None) -> ProxyDiff | None:
    """Every resource of ``node`` that differs, in type order then by name; None when nothing does."""
    out: list[ResourceDiff] = []
    for type_url in TYPE_ORDER:
        before = old.get(type_url) if old is not None else {}
        after = new.get(type_url) if new is not None else {}
        for name in sorted(set(before) | set(after)):
            a, b = before.get(name), after.get(name)
            if a is not None and b is not None and a.version == b.version:
                continue
            out.append(resource_diff(node, type_url, name, a, b))
    if not out and old is not None and new is not None:
        return None
    change = ADDED if old is None else REMOVED if new is None else CHANGED
    return ProxyDiff(node, change, tuple(out))


def diff_snapshots(
    old: Mapping[str, Snapshot], new: Mapping[str, Snapshot], node: str | None = None
) -> list[ProxyDiff]:
    """Per proxy (sorted by node id), what differs between two builds; ``node`` limits it to one proxy."""
    nodes = sorted(set(old) | set(new)) if node is None else [node]
    out = []
    for n in nodes:
        d = proxy_diff(n, old.get(n), new.get(n))
        if d is not None:
            out.append(d)
    return out


def render_text(diffs: list[ProxyDiff]) -> str:
    """A summary line per proxy, then each resource's unified diff."""
    if not diffs:
        return "no differences\n"
    parts: list[str] = []
    for d in diffs:
        counts: dict[str, int] = {}
        for r in d.resources:
            counts[r.change] = counts.get(r.change, 0) + 1
        summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
        parts.append(f"# {d.node}: proxy {d.change}" + (f" ({summary})" if summary else "") + "\n")
        parts.extend(r.diff for r in d.resources)
    return "".join(parts)


def render_json(diffs: list[ProxyDiff]) -> str:
    return json.dumps({"differs": bool(diffs), "proxies": [d.as_json() for d in diffs]}, indent=2) + "\n"
