"""Where the input names a destination, and what each such reference resolves to in one load.

A scanner per resource kind yields ``Reference``s: a place (file, document, resource, field), the value
written there, and ``resolve(side)``, the clusters that reference leads to in a given load of the mesh.
Comparing ``resolve`` before and after a change says whether the reference breaks (it led somewhere and
now leads nowhere) or changes meaning (it leads somewhere else). A new kind (MeshHTTPRoute,
MeshTCPRoute, policies with ``targetRef``) plugs in with ``register(kind, scanner)``; a generic scan over
every string field finds legacy VIPs and ``<service>.mesh`` names written anywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshxds.migrate.side import TLD, Side, legacy_dns_names
from meshxds.resources.loader import Loaded, resource_id
from meshxds.resources.model import NAMESPACE_LABEL, SERVICE_TAG, Dataplane, MeshMultiZoneService, MeshService
from meshxds.translators.outbounds import DEFAULT_OUTBOUND_ADDRESS, LEGACY

Resolver = Callable[[Side], frozenset[str]]
# The kuma.io/service names a reference uses in one load (none: it names a real resource there).
Services = Callable[[Side], tuple[str, ...]]
LEGACY_VIP_CIDR = ipaddress.ip_network("240.0.0.0/4")  # KUMA_DNS_SERVER_CIDR


@dataclass(frozen=True)
class Reference:
    """One place that names a destination; ``legacy`` marks a ``kuma.io/service`` usage the migration removes."""

    file: str
    document: int
    resource: str
    field: str
    value: str
    resolve: Resolver
    legacy: bool = False
    services: Services | None = None
    instead: str = ""  # what to write instead when that is not a MeshService (a Dataplane selector, say)

    @property
    def where(self) -> str:
        return f"{self.file}: document {self.document}: {self.resource}: {self.field}"


Scanner = Callable[[Loaded], Iterator[Reference]]
SCANNERS: dict[str, list[Scanner]] = {}


def register(kind: str, scanner: Scanner) -> None:
    """Add a scanner for resources of ``kind`` (several may share a kind)."""
    SCANNERS.setdefault(kind, []).append(scanner)


def scan(items: tuple[Loaded, ...], mesh: str) -> list[Reference]:
    """Every reference in the resources of ``mesh``, in load order: kind scanners, then the generic string scan."""
    out: list[Reference] = []
    for item in items:
        res = item.resource
        if getattr(res, "mesh", None) != mesh and not (res.kind == "Mesh" and res.name == mesh):
            continue
        for scanner in SCANNERS.get(item.resource.kind, ()):
            out.extend(scanner(item))
        out.extend(scan_strings(item))
    return out


def reference_at(item: Loaded, field: str, value: str, resolve: Resolver, legacy: bool = False,
                 services: Services | None = None, instead: str = "") -> Reference:  # fmt: skip
    return Reference(item.origin.file, item.origin.index, resource_id(item.resource),
                     item.origin.show(field) or field, value, resolve, legacy, services, instead)  # fmt: skip


def always(service: str) -> Services:
    """A reference that is a ``kuma.io/service`` in every load (a tag, a ``reachableServices`` entry)."""
    return lambda side: (service,)


def replacements(side: Side, service: str) -> tuple[str, ...]:
    """The MeshService and MeshMultiZoneService ports of the load serving any endpoint of ``kuma.io/service``
    ``service`` (the seeds' step 2: "for every usage of a kuma.io/service, decide how it should be consumed")."""
    served = side.served(side.translator.outbounds.legacy({SERVICE_TAG: service}))
    out = set()
    resources: list[MeshService | MeshMultiZoneService] = [*side.view.mesh_services, *side.view.multizone_services]
    for res in resources:
        for port in res.spec.ports:
            dest = side.translator.outbounds.resource(res, port)
            if dest is not None and side.served(dest) & served:
                out.add(side.label(dest))
    return tuple(sorted(out))


# --------------------------------------------------------------------------- Dataplane


def at_address(node: str, address: str, port: int) -> Resolver:
    """The cluster of the proxy's outbound listening on ``address:port``."""

    def resolve(side: Side) -> frozenset[str]:
        outbounds = side.outbounds(node)
        return frozenset(ob.destination.cluster for ob in outbounds if (ob.address, ob.port) == (address, port))

    return resolve


def legacy_service(node: str, service: str) -> Resolver:
    """The proxy's legacy VIP outbounds of ``service``."""

    def resolve(side: Side) -> frozenset[str]:
        return frozenset(
            ob.destination.cluster
            for ob in side.outbounds(node)
            if ob.destination.kind == LEGACY and ob.destination.service == service
        )

    return resolve


def reachable_backend(dp: Dataplane, index: int) -> Resolver:
    """The proxy's outbounds that ``reachableBackends.refs[index]`` selects (Kuma's ``GetReachableBackends``)."""
    node, namespace = dp.node_id, dp.labels.get(NAMESPACE_LABEL, "")

    def resolve(side: Side) -> frozenset[str]:
        current = side.dataplanes.get(node)
        tp = current.networking.transparent_proxying if current is not None else None
        if tp is None or tp.reachable_backends is None or index >= len(tp.reachable_backends.refs):
            return frozenset()
        kris = side.translator.outbounds.resolve_ref(tp.reachable_backends.refs[index], namespace)
        return frozenset(
            ob.destination.cluster
            for ob in side.outbounds(node)
            if ob.destination.kri in kris or ob.destination.kri_resource in kris
        )

    return resolve


def scan_dataplane(item: Loaded) -> Iterator[Reference]:
    dp = item.resource
    assert isinstance(dp, Dataplane)
    net = dp.networking
    for n, o in enumerate(net.outbound):
        address = o.address or DEFAULT_OUTBOUND_ADDRESS
        if o.backend_ref is not None:
            ref = o.backend_ref
            value = f"{ref.kind} {ref.name or ref.labels}" + (f" port {ref.port}" if ref.port else "")
            field = f"spec.networking.outbound[{n}].backendRef"
            yield reference_at(item, field, value, at_address(dp.node_id, address, o.port))
        elif o.tags and SERVICE_TAG in o.tags:
            field = f"spec.networking.outbound[{n}].tags.{SERVICE_TAG}"
            service = o.tags[SERVICE_TAG]
            resolve = at_address(dp.node_id, address, o.port)
            yield reference_at(item, field, service, resolve, legacy=True, services=always(service))
    tp = net.transparent_proxying
    if tp is None:
        return
    for n, service in enumerate(tp.reachable_services):
        field = f"spec.networking.transparentProxying.reachableServices[{n}]"
        yield reference_at(item, field, service, legacy_service(dp.node_id, service), True, always(service))
    if tp.reachable_backends is not None:
        for n, rb in enumerate(tp.reachable_backends.refs):
            value = f"{rb.kind} {rb.name or rb.labels}" + (f" port {rb.port}" if rb.port else "")
            field = f"spec.networking.transparentProxying.reachableBackends.refs[{n}]"
            yield reference_at(item, field, value, reachable_backend(dp, n))


register("Dataplane", scan_dataplane)


# --------------------------------------------------------------------------- any string field


def legacy_names(side: Side) -> dict[str, str]:
    """Legacy VIP or ``<service>.mesh`` name → service, for the load's legacy VIP outbounds."""
    out: dict[str, str] = {}
    for ob in side.translator.outbounds.legacy_outbounds:
        out[ob.address] = ob.destination.service
        for name in legacy_dns_names(ob.destination.service):
            out[name] = ob.destination.service
    return out


def mesh_legacy_name(value: str) -> Resolver:
    """Whatever legacy VIP outbound the address or name stands for in that load (none in Exclusive)."""

    def resolve(side: Side) -> frozenset[str]:
        service = legacy_names(side).get(value.split(":")[0])
        return frozenset([service]) if service is not None else frozenset()

    return resolve


def _strings(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for k, v in data.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for n, v in enumerate(data):
            yield from _strings(v, f"{path}[{n}]")


def _looks_legacy(value: str) -> bool:
    host = value.split(":")[0]
    if host.endswith(f".{TLD}"):
        return True
    try:
        return ipaddress.ip_address(host) in LEGACY_VIP_CIDR
    except ValueError:
        return False


def scan_strings(item: Loaded) -> Iterator[Reference]:
    """Strings that look like a legacy VIP (240.0.0.0/4) or ``<service>.mesh`` name, in spec fields.

    Only candidates are yielded here; ``resolve`` decides per load whether they name a legacy service.
    """
    spec = item.resource.model_dump(by_alias=True, exclude_none=True, include={"spec"})
    for path, value in _strings(spec, ""):
        if _looks_legacy(value) and "outbound[" not in path:  # explicit outbounds: scanned as Dataplane fields
            yield reference_at(item, path, value, mesh_legacy_name(value), legacy=True)
