"""``python -m bench.catalog``: Catalog assembly from cached documents, full vs after one endpoint change.

The input side of a reload after the files are read: ``resources.catalog_from_documents`` on documents the
folder service's ``FileCache`` returns (one file per resource, so an edit re-parses one file and every other
document is the very same object), on the same documents re-wrapped as the store's Mirror hands them over
(new ``Loaded`` per record, the same resources), and on one file holding everything, re-parsed whole. Each
incremental row is a real change (one Dataplane's address flips between two values), timed after it, and
checked against a from-scratch build of the same documents.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench import mesh
from bench.mesh import MeshSpec
from meshxds.resources import Catalog, LoadResult, catalog_from_documents
from meshxds.resources.errors import Origin
from meshxds.resources.loader import Documents, load_documents
from meshxds.store.folder import FileCache

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Row:
    name: str
    wall_ms: float  # median over the repetitions
    cpu_ms: float
    same: bool  # equal to a from-scratch build of the same documents (catalog and warnings)


def write_files(docs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One file per document, named so that path order is document order (the load order)."""
    paths = []
    for n, doc in enumerate(docs):
        path = folder / f"{n:06d}.yaml"
        path.write_text(yaml.dump(doc, Dumper=DUMPER))
        paths.append(path)
    return paths


def timed(fn: Callable[[], LoadResult]) -> tuple[LoadResult, float, float]:
    """Wall and CPU milliseconds of ``fn``, collector on, what lives before it frozen (as the service freezes
    what a reload leaves alive, so collections during the next one do not walk the served state)."""
    gc.collect()
    gc.freeze()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def catalog_of(result: LoadResult) -> Catalog:
    if result.catalog is None:
        raise RuntimeError("bench mesh failed to load: " + "; ".join(str(e) for e in result.errors[:5]))
    return result.catalog


def same(result: LoadResult, docs: Documents) -> bool:
    """Incremental == from scratch, with the previous catalog only for VIPs (no reuse of earlier work)."""
    scratch = catalog_from_documents(docs, previous=strip(result.catalog))
    return scratch.catalog == result.catalog and scratch.warnings == result.warnings


def strip(catalog: Catalog | None) -> Catalog | None:
    """The VIP state of ``catalog`` without the memo of its build: a from-scratch build keeps the same VIPs."""
    return None if catalog is None else replace(catalog, memo=None)


def rewrapped(docs: Documents) -> Documents:
    """As the store's Mirror assembles them: the very same resources, each in a new ``Loaded``."""
    items = tuple(replace(item, origin=Origin("store", n)) for n, item in enumerate(docs.resources, start=1))
    return replace(docs, resources=items)


def changes(name: str, previous: Catalog, repeat: int, read: Callable[[int], Documents]) -> tuple[Row, Catalog]:
    """``repeat`` builds, each after ``read(n)`` made a change and returned the documents; the median row."""
    walls, cpus, ok = [], [], True
    for n in range(repeat):
        docs = read(n)
        result, wall, cpu = timed(partial(catalog_from_documents, docs, previous=previous))
        walls.append(wall)
        cpus.append(cpu)
        ok = ok and same(result, docs)
        previous = catalog_of(result)
    return Row(name, median(walls), median(cpus), ok), previous


def run(spec: MeshSpec, repeat: int) -> list[Row]:
    docs_in = mesh.documents(spec)
    moved = moved_index(spec)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-") as tmp:
        folder = Path(tmp, "files")
        folder.mkdir()
        paths = write_files(docs_in, folder)
        cache = FileCache()
        docs = cache.load([folder])
        result, wall, cpu = timed(lambda: catalog_from_documents(docs))
        catalog = catalog_of(result)
        rows.append(Row("full load (no previous catalog)", wall, cpu, True))
        result, wall, cpu = timed(lambda: catalog_from_documents(docs, previous=catalog))
        rows.append(Row("nothing changed (previous catalog)", wall, cpu, same(result, docs)))
        catalog = catalog_of(result)

        def moved_doc(n: int) -> dict[str, Any]:
            return mesh.dataplane(spec, 0, spec.dataplanes_per_service - 1, moved=n % 2 == 0)

        def one_file(n: int) -> Documents:
            paths[moved].write_text(yaml.dump(moved_doc(n), Dumper=DUMPER))
            return cache.load([folder])

        row, catalog = changes("one Dataplane's address changed (one file re-read)", catalog, repeat, one_file)
        rows.append(row)
        row, catalog = changes(
            "  the same, documents re-wrapped (store path)", catalog, repeat, lambda n: rewrapped(one_file(n + 1))
        )
        rows.append(row)

        whole = mesh.write(spec, Path(tmp))

        def whole_file(n: int) -> Documents:
            docs_in[moved] = moved_doc(n)
            mesh.write(spec, Path(tmp), docs_in)
            return load_documents([whole])

        name = "  the same, one file for all re-parsed (parse not timed)"
        row, catalog = changes(name, catalog, max(1, repeat // 2), whole_file)
        rows.append(row)
    return rows


def moved_index(spec: MeshSpec) -> int:
    """Where svc-00000's last Dataplane sits in ``mesh.documents(spec)`` (after the Mesh and, with mTLS, the MTP)."""
    return (2 if spec.mtls else 1) + spec.dataplanes_per_service - 1


def figures(spec: MeshSpec, repeat: int = 3) -> dict[str, float]:
    """For ``python -m bench``: a full load and the median build after one endpoint change, one file per
    resource through the folder service's ``FileCache`` (equivalence is the tests' job, not timed here)."""
    docs_in = mesh.documents(spec)
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-") as tmp:
        paths = write_files(docs_in, Path(tmp))
        cache = FileCache()
        docs = cache.load([tmp])
        result, full_ms, full_cpu = timed(partial(catalog_from_documents, docs))
        catalog = catalog_of(result)
        walls, cpus = [], []
        for n in range(repeat):
            doc = mesh.dataplane(spec, 0, spec.dataplanes_per_service - 1, moved=n % 2 == 0)
            paths[moved_index(spec)].write_text(yaml.dump(doc, Dumper=DUMPER))
            docs = cache.load([tmp])
            result, wall, cpu = timed(partial(catalog_from_documents, docs, previous=catalog))
            catalog = catalog_of(result)
            walls.append(wall)
            cpus.append(cpu)
    return {
        "full_ms": full_ms,
        "full_cpu_ms": full_cpu,
        "one_change_ms": median(walls),
        "one_change_cpu_ms": median(cpus),
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(spec: MeshSpec, rows: list[Row]) -> str:
    head = ("catalog from cached documents", "wall ms", "CPU ms", "equals from scratch")
    body = [(r.name, f"{r.wall_ms:.1f}", f"{r.cpu_ms:.1f}", "yes" if r.same else "NO") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]
    title = f"{spec.services} svc x {spec.dataplanes_per_service} DP, {spec.mode}"
    lines = [title, " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.catalog", description=__doc__)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--dataplanes-per-service", type=int, default=3)
    p.add_argument("--mode", choices=mesh.MODES, default="Exclusive")
    p.add_argument("--repeat", type=int, default=5, help="changes timed per incremental row (median shown)")
    args = p.parse_args(argv)
    spec = MeshSpec(args.services, args.dataplanes_per_service, mode=args.mode)
    print(table(spec, run(spec, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
