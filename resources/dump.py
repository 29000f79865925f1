"""Resources back to Kuma's universal YAML form (for ``meshxds generate``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from meshxds.resources import model as m
from meshxds.resources.policies import AnyPolicy

Dumpable = m.MeshService | m.MeshMultiZoneService | AnyPolicy


def universal(res: Dumpable) -> dict[str, Any]:
    """``type``/``name``/``mesh``/``labels``/``spec``/``status``, Kuma's camelCase names."""
    body = res.model_dump(mode="json", by_alias=True, exclude_none=True)
    out: dict[str, Any] = {"type": body.pop("kind"), "name": body.pop("name"), "mesh": body.pop("mesh")}
    out.update(body)
    return out


def to_yaml(resources: Iterable[Dumpable]) -> str:
    return yaml.safe_dump_all([universal(r) for r in resources], sort_keys=False, default_flow_style=False)
