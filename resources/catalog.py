"""The complete, validated view of every mesh: the translators' only input.

A Catalog is what a Kuma zone control plane would hold after its generators and
status updaters ran: given and generated MeshServices with VIPs, hostnames and
status filled in. It is immutable, so the translators can cache on it freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshxds.resources.memo import CatalogMemo
from meshxds.resources.model import (
    Dataplane,
    HostnameGenerator,
    Mesh,
    MeshMultiZoneService,
    MeshService,
    MeshTrafficPermission,
    ZoneIngress,
)
from meshxds.resources.policies import AnyPolicy

DEFAULT_ZONE = "default"


@dataclass(frozen=True)
class MeshView:
    """One mesh and every resource in it, in load order (oldest first)."""

    mesh: Mesh
    dataplanes: tuple[Dataplane, ...] = ()
    mesh_services: tuple[MeshService, ...] = ()
    multizone_services: tuple[MeshMultiZoneService, ...] = ()
    # Routes and policies (Kuma's defaults first, then the given ones in load order).
    policies: tuple[AnyPolicy, ...] = ()
    # MeshTrafficPermissions of the mesh, in load order (RBAC on inbounds when mTLS is on).
    traffic_permissions: tuple[MeshTrafficPermission, ...] = ()

    @property
    def name(self) -> str:
        return self.mesh.name


@dataclass(frozen=True)
class Catalog:
    """Every mesh of this zone, plus the global-scoped resources."""

    zone: str = DEFAULT_ZONE
    meshes: dict[str, MeshView] = field(default_factory=dict)
    hostname_generators: tuple[HostnameGenerator, ...] = ()
    zone_ingresses: tuple[ZoneIngress, ...] = ()
    # Every VIP ever handed out by this chain of loads: never reused, so a reload never moves one.
    allocated_vips: frozenset[str] = frozenset()
    # The VIPs of every service this chain of loads has seen, by (kind, mesh, name), including services that
    # are gone: one that comes back (a file briefly missing or half written) gets its VIP back. Kuma's deletion
    # grace period for generated MeshServices keeps them stable the same way.
    vip_memory: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict, compare=False)
    # node id → the DNS port its sidecar reported (node metadata ``dataplane.dns.port``); fed in at the edge.
    dns_ports: dict[str, int] = field(default_factory=dict)
    # What the build of this Catalog computed, for the next build to take over (``resources.memo``).
    memo: CatalogMemo | None = field(default=None, compare=False, repr=False)

    def dataplane(self, node_id: str) -> Dataplane | None:
        """Find a Dataplane by Kuma node id ``<mesh>.<name>``."""
        for view in self.meshes.values():
            for dp in view.dataplanes:
                if dp.node_id == node_id:
                    return dp
        return None

    def node_ids(self) -> list[str]:
        return sorted(dp.node_id for view in self.meshes.values() for dp in view.dataplanes)
