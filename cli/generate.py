"""``meshxds generate PATH...``: every MeshService (given and generated) and MeshMultiZoneService, with status."""

from __future__ import annotations

import argparse
import sys

from meshxds.control.report import report
from meshxds.resources import load_catalog
from meshxds.resources.dump import to_yaml
from meshxds.resources.model import MeshMultiZoneService, MeshService


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)
    if result.catalog is None:
        return 1
    services: list[MeshService | MeshMultiZoneService] = []
    for view in result.catalog.meshes.values():
        services += view.mesh_services
        services += view.multizone_services
    sys.stdout.write(to_yaml(services))
    return 0
