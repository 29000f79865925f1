"""``meshxds generate PATH...``: every MeshService (given and generated) and MeshMultiZoneService, with status,
then the default policies Kuma would have created with each Mesh (unless ``skipCreatingInitialPolicies``)."""

from __future__ import annotations

import argparse
import sys

from meshxds.control.report import report
from meshxds.resources import load_catalog
from meshxds.resources.dump import Dumpable, to_yaml
from meshxds.resources.targeting import default_policies


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)
    if result.catalog is None:
        return 1
    out: list[Dumpable] = []
    for view in result.catalog.meshes.values():
        out += view.mesh_services
        out += view.multizone_services
    for view in result.catalog.meshes.values():
        out += [d for d in default_policies(view.mesh, result.catalog.zone) if d in view.policies]
    sys.stdout.write(to_yaml(out))
    return 0
