"""Catalog → one checked ``Snapshot`` per proxy, each distinct message encoded exactly once.

The translators hand every proxy the very same message objects (and the very same outbound
``ResourceSet``) for shared resources. So an ``Entry`` cache keyed by object identity turns
"encode per proxy" into "encode per resource", and a shared ``Layer`` per outbound selection is
indexed, versioned and checked once; a proxy adds only its own inbound layer on top. Before a
snapshot can be served it must be self-consistent: Envoy would otherwise sit warming (an EDS
cluster without its CLA) or route into nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshxds.resources.catalog import Catalog, MeshView
from meshxds.resources.model import ZoneIngress
from meshxds.security.identity import Identity
from meshxds.security.issuer import NO_CREDENTIALS, IdentityIssuer, MeshTrust
from meshxds.snapshots.snapshot import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    SHORT_NAMES,
    TYPE_ORDER,
    Entry,
    Layered,
    Snapshot,
    digest,
    type_version,
)
from meshxds.snapshots.wire import filter_references, route_config_clusters
from meshxds.translators import ResourceSet
from meshxds.translators.memo import same_items
from meshxds.translators.proxy import MeshTranslator
from meshxds.translators.tls import ca_secret, identity_secret


class SnapshotError(ValueError):
    """A translated snapshot that must not be served; the message names node and resource."""


def snapshots_for(catalog: Catalog, issuer: IdentityIssuer | None = None) -> dict[str, Snapshot]:
    """Translate and encode every proxy of ``catalog``; raises ``SnapshotError`` on an inconsistent one.
    Meshes with mTLS get identities from ``issuer`` (default: a throwaway in-memory one)."""
    return Builder(issuer).build(catalog)


class Builder:
    """Snapshots for catalog after catalog, redoing only what changed since the previous build.

    Per mesh: an equal ``MeshInputs`` reuses the mesh's snapshots outright; otherwise the mesh's
    translator and encoding cache take what they can from the previous build (see
    ``MeshTranslator``), and a proxy whose own and shared layers are the very same objects as last
    time gets its previous ``Snapshot`` object back, so the server has nothing to push to it.
    ``build`` equals ``snapshots_for`` on the same catalog; a failed build leaves the state as it was.
    """

    def __init__(self, issuer: IdentityIssuer | None = None) -> None:
        self._meshes: dict[str, MeshBuild] = {}
        self.issuer = issuer or IdentityIssuer()
        self.credentials = NO_CREDENTIALS

    def build(self, catalog: Catalog) -> dict[str, Snapshot]:
        meshes: dict[str, MeshBuild] = {}
        out: dict[str, Snapshot] = {}
        mtls = any(view.mesh.spec.mtls_enabled for view in catalog.meshes.values())
        creds = self.issuer.credentials(catalog) if mtls else NO_CREDENTIALS  # issued at the edge, before translating
        for name in sorted(catalog.meshes):
            view = catalog.meshes[name]
            ports = tuple(
                (dp.node_id, catalog.dns_ports[dp.node_id]) for dp in view.dataplanes if dp.node_id in catalog.dns_ports
            )
            trust = creds.meshes.get(name)
            ids = tuple(creds.identities.get(dp.node_id) for dp in view.dataplanes) if trust else ()
            inputs = MeshInputs(view, catalog.zone, catalog.zone_ingresses, ports, trust, ids)
            previous = self._meshes.get(name)
            if previous is None or previous.inputs != inputs:
                previous = MeshBuild.of(inputs, catalog, previous)
            meshes[name] = previous
            out.update(previous.snapshots)
        self._meshes = meshes
        self.credentials = creds
        return out


@dataclass(frozen=True)
class MeshInputs:
    """Everything the translators read for one mesh: its view and the few catalog-wide fields they use."""

    view: MeshView
    zone: str
    zone_ingresses: tuple[ZoneIngress, ...]
    dns_ports: tuple[tuple[str, int], ...] = ()  # (node id, reported DNS port) of this mesh's proxies
    trust: MeshTrust | None = None  # mesh mTLS: its CA, and each Dataplane's identity (same order)
    identities: tuple[Identity | None, ...] = ()


@dataclass(frozen=True)
class MeshBuild:
    """One mesh's snapshots and the translation and encoding work behind them, kept for the next build."""

    inputs: MeshInputs
    translator: MeshTranslator
    cache: BuildCache
    snapshots: dict[str, Snapshot]
    layers: dict[str, tuple[Layer, ...]]  # node id → (own, *shared) its snapshot was made of
    # node id → (identity, mesh trust, its SDS secrets): kept while both are unchanged (mTLS only)
    secrets: dict[str, tuple[Identity, MeshTrust, ResourceSet]] = field(default_factory=dict)

    @classmethod
    def of(cls, inputs: MeshInputs, catalog: Catalog, previous: MeshBuild | None) -> MeshBuild:
        translator = MeshTranslator(inputs.view, catalog, previous.translator if previous else None)
        cache = BuildCache(previous.cache if previous else None)
        snapshots: dict[str, Snapshot] = {}
        layers: dict[str, tuple[Layer, ...]] = {}
        secrets: dict[str, tuple[Identity, MeshTrust, ResourceSet]] = {}
        for n, dp in enumerate(inputs.view.dataplanes):
            res = translator.proxy(dp)
            node_id = res.node_id
            shared = tuple(cache.layer(node_id, rs) for rs in res.shared_sets)
            if inputs.trust is not None and (identity := inputs.identities[n]) is not None:
                kept = previous.secrets.get(node_id) if previous else None
                if kept is None or kept[0] != identity or kept[1] != inputs.trust:
                    kept = (identity, inputs.trust, secret_set(inputs.trust, identity))
                secrets[node_id] = kept
                shared += (cache.layer(node_id, kept[2]),)
            own = cache.layer(node_id, res.own)
            layers[node_id] = (own, *shared)
            old = previous.snapshots.get(node_id) if previous else None
            was = previous.layers.get(node_id) if previous else None
            if old is not None and was is not None and same_items(was, layers[node_id]):
                snapshots[node_id] = old  # the very same layers: nothing to redo
                continue
            snapshot = own.snapshot(node_id, shared)
            # Equal content from new objects (e.g. reordered input): keep the old object all the same.
            snapshots[node_id] = old if old is not None and old.versions == snapshot.versions else snapshot
        translator.release()
        cache.release()
        return cls(inputs, translator, cache, snapshots, layers, secrets)


def secret_set(trust: MeshTrust, identity: Identity) -> ResourceSet:
    """A proxy's SDS secrets: its identity and its mesh's CA, under Kuma's names."""
    return ResourceSet(
        secrets=(
            identity_secret(trust.mesh, identity.cert_pem, identity.key_pem),
            ca_secret(trust.mesh, (trust.ca_pem,)),
        )
    )


class BuildCache:
    """Memo by object identity: one Entry per message, one Layer per ResourceSet, one reference scan per
    typed_config. Given the previous build's cache, it takes over whatever is still in use.

    Each value keeps its key object alive, so ids stay unique while the cache lives; a value taken
    from the previous cache is checked to belong to the very same object.
    """

    def __init__(self, previous: BuildCache | None = None) -> None:
        self._entries: dict[int, Entry] = {}
        self._typed: dict[int, tuple[Any, list[str], list[str]]] = {}
        self._needs: dict[int, tuple[Entry, list[Need]]] = {}
        self._layers: dict[int, tuple[ResourceSet, Layer]] = {}
        old = previous
        self._old_entries = old._entries if old else {}
        self._old_typed = old._typed if old else {}
        self._old_needs = old._needs if old else {}
        self._old_layers = old._layers if old else {}

    def release(self) -> None:
        """The build is done: drop the previous build's leftovers, so at most one build lives on."""
        self._old_entries, self._old_typed, self._old_needs, self._old_layers = {}, {}, {}, {}

    def entry(self, type_url: str, name: str, message: Any) -> Entry:
        key = id(message)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._old_entries.get(key)
            if entry is None or entry.message is not message:
                entry = Entry.of(type_url, name, message)
            self._entries[key] = entry
        return entry

    def layer(self, node_id: str, rs: ResourceSet) -> Layer:
        """The encoded, indexed and checked ``rs`` (errors name ``node_id``, the first proxy to use it)."""
        key = id(rs)
        hit = self._layers.get(key)
        if hit is None:
            hit = self._old_layers.get(key)
            if hit is None or hit[0] is not rs:
                hit = (rs, Layer.of(node_id, rs, self))
            self._layers[key] = hit
        return hit[1]

    def typed_config_refs(self, typed_config: Any) -> tuple[list[str], list[str]]:
        """(clusters, RDS routes) a filter's typed_config refers to."""
        key = id(typed_config)
        hit = self._typed.get(key)
        if hit is None:
            hit = self._old_typed.get(key)
            if hit is None or hit[0] is not typed_config:
                hit = (typed_config, *filter_references(typed_config.type_url, typed_config.value))
            self._typed[key] = hit
        return hit[1], hit[2]

    def needs(self, entry: Entry) -> list[Need]:
        """An EDS cluster needs its CLA; a listener its clusters and RDS routes; a route its clusters."""
        key = id(entry)
        hit = self._needs.get(key)
        if hit is None:
            hit = self._old_needs.get(key)
            if hit is None or hit[0] is not entry:
                hit = (entry, self._scan(entry))
            self._needs[key] = hit
        return hit[1]

    def _scan(self, entry: Entry) -> list[Need]:
        msg = entry.message
        if entry.type_url == CLUSTER:
            return [] if entry.eds_service is None else [Need(CLUSTER, entry.name, ENDPOINT, entry.eds_service)]
        if entry.type_url == LISTENER:
            out: list[Need] = []
            for chain in msg.filter_chains:
                for flt in chain.filters:
                    if flt.typed_config is not None:
                        clusters, routes = self.typed_config_refs(flt.typed_config)
                        out += [Need(LISTENER, entry.name, CLUSTER, c) for c in clusters]
                        out += [Need(LISTENER, entry.name, ROUTE, r) for r in routes]
            return out
        if entry.type_url == ROUTE:
            return [Need(ROUTE, entry.name, CLUSTER, c) for c in route_config_clusters(entry.value)]
        return []


@dataclass(frozen=True)
class Need:
    """Resource ``name`` (of type ``type_url``) needs ``ref`` of type ``target`` in the same snapshot."""

    type_url: str
    name: str
    target: str
    ref: str

    def error(self, node_id: str) -> SnapshotError:
        what = {ENDPOINT: "ClusterLoadAssignment", CLUSTER: "cluster", ROUTE: "RouteConfiguration"}[self.target]
        kind = SHORT_NAMES[self.type_url][:-1]
        return SnapshotError(f"{node_id}: {kind} {self.name!r} needs {what} {self.ref!r}, which is missing")


@dataclass(frozen=True)
class Layer:
    """The encoded resources of one ResourceSet by type and name, and what they need from outside it."""

    by_type: dict[str, dict[str, Entry]]
    versions: dict[str, str]
    open_needs: tuple[Need, ...]

    @classmethod
    def of(cls, node_id: str, rs: ResourceSet, cache: BuildCache) -> Layer:
        groups = (
            (CLUSTER, [(c.name, c) for c in rs.clusters]),
            (ENDPOINT, [(e.cluster_name, e) for e in rs.endpoints]),
            (LISTENER, [(lis.name, lis) for lis in rs.listeners]),
            (ROUTE, [(r.name, r) for r in rs.routes]),
            (SECRET, [(x.name, x) for x in rs.secrets]),
        )
        by_type: dict[str, dict[str, Entry]] = {}
        for type_url, items in groups:
            entries = by_type[type_url] = {}
            for name, message in items:
                if name in entries:
                    raise SnapshotError(f"{node_id}: two different {SHORT_NAMES[type_url]} named {name!r}")
                entries[name] = cache.entry(type_url, name, message)
        needs = [need for t in (CLUSTER, LISTENER, ROUTE) for e in by_type[t].values() for need in cache.needs(e)]
        open_needs = tuple(n for n in needs if n.ref not in by_type[n.target])
        return cls(by_type, {t: type_version(r) for t, r in by_type.items()}, open_needs)

    def snapshot(self, node_id: str, shared: tuple[Layer, ...]) -> Snapshot:
        """This (own) layer over the ``shared`` ones (at least one); overlapping names and unmet needs are
        errors naming node and resource."""
        layers = (self, *shared)
        merged: dict[str, Mapping[str, Entry]] = {}
        for t in TYPE_ORDER:
            maps = [layer.by_type[t] for layer in layers]
            for n, first in enumerate(maps):
                for other in maps[n + 1 :]:
                    small, big = (first, other) if n == 0 or len(first) <= len(other) else (other, first)
                    for name in small:  # the own layer's names first, so a clash names one of them
                        if name in big:
                            raise SnapshotError(f"{node_id}: two different {SHORT_NAMES[t]} named {name!r}")
            filled = [m for m in maps if m]
            merged[t] = Layered(*filled) if len(filled) > 1 else filled[0] if filled else maps[-1]
        for layer in layers:
            for need in layer.open_needs:
                if need.ref not in merged[need.target]:
                    raise need.error(node_id)
        versions = {t: digest("".join(layer.versions[t] for layer in layers).encode()) for t in TYPE_ORDER}
        return Snapshot(node_id, merged, versions)
