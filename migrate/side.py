"""One load of one mesh seen from its proxies: each proxy's outbounds, DNS names, resource counts and sizes.

The outbounds come from the translator's own ``MeshOutbounds.for_proxy`` and the endpoints from
``MeshTranslator.endpoints``, so a plan or an explanation describes exactly what is served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from meshxds.migrate.inputs import Input
from meshxds.resources.catalog import MeshView
from meshxds.resources.model import SERVICE_TAG, Dataplane, MeshMultiZoneService, MeshService, MeshServicesMode
from meshxds.snapshots.snapshot import SECRET, SHORT_NAMES, TYPE_ORDER, Snapshot
from meshxds.translators.endpoints import Endpoint
from meshxds.translators.outbounds import LEGACY, MESH_SERVICE, Destination, Outbound
from meshxds.translators.proxy import MeshTranslator

TLD = "mesh"  # KUMA_DNS_SERVER_DOMAIN: legacy services resolve as <service>.mesh


def legacy_dns_names(service: str) -> list[str]:
    """Kuma's ``VIPOutbounds`` domains of a service VIP: ``<service>.mesh``, and with ``_`` → ``.`` if different."""
    names = [f"{service}.{TLD}"]
    dotted = f"{service.replace('_', '.')}.{TLD}"
    return names if dotted == names[0] else [*names, dotted]


@dataclass(frozen=True)
class Size:
    """Resources and encoded bytes (the protobuf ``Any`` values Envoy receives) of one snapshot."""

    resources: int
    bytes: int

    @classmethod
    def of(cls, snapshot: Snapshot | None) -> Size:
        if snapshot is None:
            return cls(0, 0)
        # Configuration only: SDS secrets are keys and certificates, whose size changes with every issue.
        entries = [e for t in TYPE_ORDER if t != SECRET for e in snapshot.get(t).values()]
        return cls(len(entries), sum(len(e.value) for e in entries))


@dataclass
class Side:
    """Mesh ``mesh`` of one ``Input``; per-proxy answers are computed on first use."""

    input: Input
    mesh: str
    translator: MeshTranslator = field(init=False)
    _outbounds: dict[str, list[Outbound]] = field(default_factory=dict, init=False)
    _served: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict, init=False)
    _by_endpoint: dict[str, dict[tuple[str, int], dict[str, Destination]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.translator = MeshTranslator(self.view, self.input.catalog)

    @property
    def view(self) -> MeshView:
        return self.input.catalog.meshes[self.mesh]

    @property
    def mode(self) -> MeshServicesMode:
        return self.view.mesh.spec.mode

    @cached_property
    def dataplanes(self) -> dict[str, Dataplane]:
        return {dp.node_id: dp for dp in self.view.dataplanes}

    def outbounds(self, node: str) -> list[Outbound]:
        """The proxy's outbounds as the translator lays them out (empty for an unknown node)."""
        hit = self._outbounds.get(node)
        if hit is None:
            dp = self.dataplanes.get(node)
            hit = self._outbounds[node] = self.translator.outbounds.for_proxy(dp) if dp is not None else []
        return hit

    def endpoints(self, dest: Destination) -> list[Endpoint]:
        return self.translator.endpoints(dest)

    def served(self, dest: Destination) -> frozenset[tuple[str, int]]:
        """The address:port pairs behind ``dest`` (memoised by cluster: one Destination per cluster)."""
        hit = self._served.get(dest.cluster)
        if hit is None:
            hit = self._served[dest.cluster] = frozenset((e.address, e.port) for e in self.endpoints(dest))
        return hit

    def serving(self, node: str, endpoints: frozenset[tuple[str, int]]) -> list[Destination]:
        """The proxy's destinations that reach any of ``endpoints``."""
        index = self._by_endpoint.get(node)
        if index is None:
            index = self._by_endpoint[node] = {}
            for ob in self.outbounds(node):
                for ep in self.served(ob.destination):
                    index.setdefault(ep, {})[ob.destination.cluster] = ob.destination
        found: dict[str, Destination] = {}
        for ep in endpoints:
            found.update(index.get(ep, {}))
        return list(found.values())

    @cached_property
    def resources(self) -> dict[str, tuple[MeshService | MeshMultiZoneService, int]]:
        """Cluster name → the MeshService/MeshMultiZoneService and port number it was made from."""
        out: dict[str, tuple[MeshService | MeshMultiZoneService, int]] = {}
        services: list[MeshService | MeshMultiZoneService] = [*self.view.mesh_services, *self.view.multizone_services]
        for res in services:
            for port in res.spec.ports:
                dest = self.translator.outbounds.resource(res, port)
                if dest is not None:
                    out.setdefault(dest.cluster, (res, port.port))
        return out

    def label(self, dest: Destination) -> str:
        """How a person names the destination: ``kuma.io/service backend``, ``MeshService backend:80 (zone west)``."""
        if dest.kind == LEGACY:
            extra = ", ".join(f"{k}={v}" for k, v in sorted(dest.tags.items()) if k != SERVICE_TAG)
            return f"{SERVICE_TAG} {dest.service}" + (f" [{extra}]" if extra else "")
        hit = self.resources.get(dest.cluster)
        if hit is None:
            return dest.cluster
        res, port = hit
        where = []
        if isinstance(res, MeshService):
            if res.namespace:
                where.append(f"namespace {res.namespace}")
            if not res.is_local:
                where.append(f"zone {res.zone}")
        kind = MESH_SERVICE if isinstance(res, MeshService) else res.kind
        return f"{kind} {res.display_name}:{port}" + (f" ({', '.join(where)})" if where else "")

    @cached_property
    def vip_domains(self) -> list[tuple[str, list[str]]]:
        """Kuma's mesh ``VIPDomains``: legacy VIPs (not in Exclusive) and each resource's first VIP."""
        out: list[tuple[str, list[str]]] = []
        for ob in self.translator.outbounds.legacy_outbounds:
            out.append((ob.address, legacy_dns_names(ob.destination.service)))
        services: list[MeshService | MeshMultiZoneService] = [*self.view.mesh_services, *self.view.multizone_services]
        for res in services:
            if res.status.vips and res.status.addresses:
                out.append((res.status.vips[0].ip, [a.hostname for a in res.status.addresses]))
        return out

    def dns_names(self, node: str) -> dict[str, str]:
        """Name → address the proxy's DNS answers: Kuma's ``DNSGenerator`` keeps the domains of addresses the
        proxy has an outbound for, and only on a transparent proxy."""
        dp = self.dataplanes.get(node)
        if dp is None or not dp.transparent:
            return {}
        addresses = {ob.address for ob in self.outbounds(node)}
        return {name: addr for addr, names in self.vip_domains if addr in addresses for name in names}

    def names(self, node: str) -> dict[str, set[str]]:
        """Per resource type (and ``dns``), the names the proxy receives."""
        snapshot = self.input.snapshots.get(node)
        out = {SHORT_NAMES[t]: set(snapshot.get(t)) if snapshot else set() for t in TYPE_ORDER}
        out["dns"] = set(self.dns_names(node))
        return out

    def size(self, node: str) -> Size:
        return Size.of(self.input.snapshots.get(node))
