"""Kuma's validation rules plus the checks a user of plain files needs.

Per resource: ``rules.py`` (Kuma 2.14's validators and the documented stricter checks).
Across resources: duplicate names and resources in a mesh that does not exist. Every
problem is returned, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from meshxds.resources.errors import Problem, Severity
from meshxds.resources.loader import AnyResource, Loaded, resource_id
from meshxds.resources.rules import Finding, check_resource


def validate(
    items: Sequence[Loaded],
    meshes: set[str],
    check: Callable[[AnyResource], Sequence[Finding]] = check_resource,
) -> list[Problem]:
    """Every rule over every resource; ``meshes`` are the names of the meshes that exist.

    ``check`` runs the per-resource rules (a caller may memoise it: it depends on the resource only).
    """
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], Loaded] = {}
    for item in items:
        res = item.resource
        for found in check(res):
            severity = Severity.WARNING if found.warning else Severity.ERROR
            problems.append(item.origin.problem(resource_id(res), found.field, found.message, severity))
        mesh = getattr(res, "mesh", "")
        if mesh and mesh not in meshes:
            problems.append(item.origin.problem(resource_id(res), "mesh", f"mesh {mesh!r} does not exist"))
        key = (res.kind, mesh, res.name)
        if key in seen:
            first = seen[key].origin
            problems.append(
                item.origin.problem(
                    resource_id(res), "name", f"duplicate name: already defined in {first.file}: document {first.index}"
                )
            )
        else:
            seen[key] = item
    return problems
