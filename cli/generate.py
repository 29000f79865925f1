"""``meshxds generate PATH...``: every MeshService (given and generated) with status, as universal YAML."""

from __future__ import annotations

import argparse
import sys

from cli.validate import report
from resources import load_catalog
from resources.dump import to_yaml


def run(args: argparse.Namespace) -> int:
    result = load_catalog(args.paths, zone=args.zone)
    report(result)
    if result.catalog is None:
        return 1
    services = [ms for view in result.catalog.meshes.values() for ms in view.mesh_services]
    sys.stdout.write(to_yaml(services))
    return 0
