"""``meshxds validate PATH...``: one summary line per mesh (exit 0) or every error (exit 1)."""

from __future__ import annotations

import argparse
import sys

from meshxds.control.report import report
from meshxds.resources import load_catalog
from meshxds.resources.catalog import MeshView
from meshxds.resources.model import MANAGED_BY_GENERATOR, MANAGED_BY_LABEL


def summary(view: MeshView) -> str:
    generated = sum(1 for ms in view.mesh_services if ms.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_GENERATOR)
    return (
        f"mesh {view.name}: mode {view.mesh.spec.mode.value}, {len(view.dataplanes)} dataplanes, "
        f"{len(view.mesh_services)} meshservices ({generated} generated), "
        f"{len(view.multizone_services)} multizone services, {len(view.policies)} routes and policies"
    )


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)
    if result.catalog is None:
        print(f"{len(result.errors)} error(s)", file=sys.stderr)
        return 1
    for view in result.catalog.meshes.values():
        print(summary(view))
    return 0
