"""What the control plane must remember across restarts: VIPs and the MeshServices it generated.

The loader keeps VIPs stable across reloads through the previous Catalog. Persisting the services of
that Catalog (with their VIPs, and the generated ones with their ports) plus every VIP ever handed
out lets a restarted process, or a new leader, rebuild that "previous" and allocate exactly as before.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from meshxds.resources import model as m
from meshxds.resources.catalog import Catalog, MeshView

STATE_NAME = "catalog"


def remembered(catalog: Catalog) -> dict[str, Any]:
    """JSON of every MeshService/MeshMultiZoneService (kind, mesh, name, labels, spec, status.vips)."""
    services: list[dict[str, Any]] = []
    for view in catalog.meshes.values():
        kept: list[m.MeshService | m.MeshMultiZoneService] = [*view.mesh_services, *view.multizone_services]
        for svc in kept:
            body = svc.model_dump(mode="json", by_alias=True, exclude_none=True, include={"kind", "name", "mesh"})
            body["labels"] = dict(svc.labels)
            if svc.labels.get(m.MANAGED_BY_LABEL) == m.MANAGED_BY_GENERATOR:
                body["spec"] = svc.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
            body["vips"] = [v.ip for v in svc.status.vips]
            services.append(body)
    return {"services": services, "allocated": sorted(catalog.allocated_vips)}


def previous_catalog(state: dict[str, Any] | None, zone: str = "default") -> Catalog | None:
    """A Catalog holding only what ``load_catalog(previous=...)`` reads: services, VIPs, generated ports."""
    if not state:
        return None
    views: dict[str, tuple[list[m.MeshService], list[m.MeshMultiZoneService]]] = {}
    for body in state.get("services", []):
        try:
            kind, mesh, name = body["kind"], body["mesh"], body["name"]
            status = {"vips": [{"ip": ip} for ip in body.get("vips", [])]}
            common = {"name": name, "mesh": mesh, "labels": body.get("labels", {}), "status": status}
            services, multizone = views.setdefault(mesh, ([], []))
            if kind == "MeshService":
                services.append(m.MeshService.model_validate({**common, "spec": body.get("spec", {})}))
            elif kind == "MeshMultiZoneService":
                spec = {"selector": {"meshService": {}}, "ports": []}
                multizone.append(m.MeshMultiZoneService.model_validate({**common, "spec": spec}))
        except (KeyError, TypeError, ValidationError):
            continue  # a service this version cannot read is allocated anew, never a crash
    meshes = {
        mesh: MeshView(mesh=m.Mesh(name=mesh), mesh_services=tuple(s), multizone_services=tuple(z))
        for mesh, (s, z) in views.items()
    }
    return Catalog(zone=zone, meshes=meshes, allocated_vips=frozenset(state.get("allocated", [])))
