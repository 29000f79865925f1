"""Resource files → a Catalog and its snapshots, keeping where each resource came from; bad input is an error.

``migrate`` needs the documents' origins (file and document index) to point at the field that breaks, and
``plan`` needs to load the same files once more with a Mesh's ``meshServices.mode`` replaced in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from meshxds.resources import Catalog, catalog_from_documents
from meshxds.resources.errors import Origin
from meshxds.resources.loader import Documents, Loaded, load_documents
from meshxds.resources.model import Mesh, MeshServices, MeshServicesMode
from meshxds.security.issuer import IdentityIssuer
from meshxds.snapshots.builder import SnapshotError, snapshots_for
from meshxds.snapshots.snapshot import Snapshot

# One issuer for every load in the process: two loads of the same files get the same mesh CA and identities, so
# a diff or plan compares configuration, not freshly generated keys.
ISSUER = IdentityIssuer()
IN_MEMORY = "(in memory)"  # origin of a Mesh that only exists because a mode was set on the default mesh


class InputError(ValueError):
    """Input that cannot be planned on: one line per problem, the same lines as ``meshxds validate``."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


@dataclass(frozen=True)
class Input:
    """One load of the resource files: documents with origins, the Catalog and every proxy's snapshot."""

    documents: Documents
    catalog: Catalog
    snapshots: dict[str, Snapshot]

    def origin(self, kind: str, name: str, mesh: str | None = None) -> Origin | None:
        """Where a resource was written (None for generated ones)."""
        for item in self.documents.resources:
            res = item.resource
            if res.kind == kind and res.name == name and (mesh is None or getattr(res, "mesh", mesh) == mesh):
                return item.origin
        return None


def load(paths: Sequence[str | Path], zone: str = "default", mode: tuple[str, MeshServicesMode] | None = None,
         previous: Catalog | None = None) -> Input:  # fmt: skip
    """Load ``paths``; with ``mode=(mesh, mode)`` that Mesh's ``meshServices.mode`` is replaced before anything
    is generated (the generator reads it). ``previous`` keeps VIPs where an earlier load put them."""
    docs = load_documents(paths, zone)
    if mode is not None:
        docs = with_mode(docs, *mode)
    result = catalog_from_documents(docs, zone, previous)
    if result.catalog is None:
        raise InputError([str(p) for p in result.errors])
    try:
        snapshots = snapshots_for(result.catalog, ISSUER)
    except SnapshotError as exc:
        raise InputError([str(exc)]) from exc
    return Input(docs, result.catalog, snapshots)


def with_mode(docs: Documents, mesh: str, mode: MeshServicesMode) -> Documents:
    """The same documents with Mesh ``mesh`` set to ``mode`` (Kuma creates ``default`` when no Mesh is given)."""
    items: list[Loaded] = []
    found = False
    for item in docs.resources:
        res = item.resource
        if isinstance(res, Mesh) and res.name == mesh:
            spec = res.spec.model_copy(update={"mesh_services": MeshServices(mode=mode)})
            item = Loaded(res.model_copy(update={"spec": spec}), item.origin)
            found = True
        items.append(item)
    if not found:
        has_meshes = any(isinstance(i.resource, Mesh) for i in docs.resources)
        if has_meshes or mesh != "default":
            raise InputError([f"--mesh {mesh!r}: no Mesh of that name in the input"])
        created = Mesh(name=mesh).model_copy(update={"spec": Mesh(name=mesh).spec.model_copy(
            update={"mesh_services": MeshServices(mode=mode)})})  # fmt: skip
        items.insert(0, Loaded(created, Origin(IN_MEMORY, 0)))
    return replace(docs, resources=tuple(items))
