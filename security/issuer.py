"""Issues and keeps every proxy's identity: the edge step that runs before the (pure) translators.

For each mesh with mTLS enabled: its CA (builtin: from the state directory, created once; provided:
the user's files), and for each Dataplane an identity that is reused while it still fits (same SANs,
same CA, same lifetime setting, not past 4/5 of its life, as Kuma's ``shouldGenerateCerts``) and
issued otherwise. Issued identities are written to the state directory, so a restart reuses them
instead of re-issuing every certificate at once. The result, ``Credentials``, is what the snapshot
builder turns into SDS secrets; it is immutable and compares equal while nothing was re-issued.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from meshxds.resources.catalog import Catalog
from meshxds.resources.model import Dataplane, Mesh
from meshxds.resources.mtls import Backend, Mode, builtin_conf, parse_mesh_duration, provided_conf
from meshxds.security.ca import CertificateAuthority, new_root_ca
from meshxds.security.identity import WORKLOAD_VALIDITY, Identity, identity_uris, issue_identity, tag_set
from meshxds.security.keys import EC_P256, KeySpec
from meshxds.security.state import StateDir

log = logging.getLogger("meshxds.security")
Clock = Callable[[], datetime.datetime]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class MeshTrust:
    """A mesh's mTLS settings as the translators need them (no key material)."""

    mesh: str
    backend: str
    mode: Mode
    ca_pem: bytes = field(repr=False)
    ca_fingerprint: str


@dataclass(frozen=True)
class Credentials:
    """Per mesh with mTLS: its trust; per node id: its identity. Empty when no mesh has mTLS."""

    meshes: Mapping[str, MeshTrust] = field(default_factory=dict)
    identities: Mapping[str, Identity] = field(default_factory=dict)

    def next_rotation(self) -> datetime.datetime | None:
        """The earliest moment an identity should be re-issued (None: nothing to rotate)."""
        return min((i.rotate_at for i in self.identities.values()), default=None)


NO_CREDENTIALS = Credentials()


class IdentityIssuer:
    """Keeps CAs and identities across builds; ``credentials(catalog)`` is called at every build."""

    def __init__(self, state: StateDir | None = None, spec: KeySpec = EC_P256, clock: Clock = utcnow) -> None:
        self.state = state
        self.spec = spec
        self.clock = clock
        self.issued = 0  # identities issued by this process (for logs and benchmarks)
        self._cas: dict[tuple[str, str, str], CertificateAuthority] = {}
        self._identities: dict[str, Identity] = {}
        self._uris: dict[str, tuple[Dataplane, tuple[str, ...]]] = {}  # node id → (Dataplane, its identity's SANs)

    def credentials(self, catalog: Catalog) -> Credentials:
        meshes: dict[str, MeshTrust] = {}
        identities: dict[str, Identity] = {}
        now = self.clock()
        for name in sorted(catalog.meshes):
            view = catalog.meshes[name]
            backend = view.mesh.spec.mtls.enabled if view.mesh.spec.mtls else None
            if backend is None:
                continue
            ca = self.mesh_ca(view.mesh, backend)
            ca_fingerprint = ca.fingerprint  # a SHA-256 of the certificate at every read: once per mesh
            meshes[name] = MeshTrust(name, backend.name, backend.mode, ca.cert_pem, ca_fingerprint)
            lifetime = backend.cert_expiration or WORKLOAD_VALIDITY
            for dp in view.dataplanes:
                identities[dp.node_id] = self._identity(dp, ca, ca_fingerprint, lifetime, now)
        self._identities = identities
        self._uris = {node: hit for node, hit in self._uris.items() if node in identities}  # drop proxies that left
        return Credentials(meshes, identities)

    def mesh_ca(self, mesh: Mesh, backend: Backend) -> CertificateAuthority:
        """The CA of ``backend``: created once (builtin) or read (provided); cached for the process."""
        key = (mesh.name, backend.name, backend.type)
        ca = self._cas.get(key)
        if ca is not None and backend.type == "builtin":
            return ca
        if backend.type == "provided":
            conf = provided_conf(backend)
            if conf.cert is None or conf.key is None:
                raise ValueError(
                    f"mesh {mesh.name!r}: provided CA backend {backend.name!r} needs conf.cert and conf.key"
                )
            what = f"mesh {mesh.name!r} provided CA backend {backend.name!r}"
            ca = CertificateAuthority.load(conf.cert.read(), conf.key.read(), what)
        else:
            conf_b = builtin_conf(backend)
            bits = conf_b.ca_cert.rsa_bits if conf_b.ca_cert else None
            spec = KeySpec("rsa", bits) if bits else self.spec
            expiration = conf_b.ca_cert.expiration if conf_b.ca_cert else None
            valid_for = parse_mesh_duration(expiration) if expiration else None
            if self.state is not None:
                ca, created = self.state.builtin_ca(mesh.name, backend.name, spec, valid_for)
                if created:
                    log.info("mesh %s: created builtin CA %r (SHA-256 %s)", mesh.name, backend.name, ca.fingerprint)
            else:
                ca = new_root_ca(mesh.name, spec) if valid_for is None else new_root_ca(mesh.name, spec, valid_for)
                log.info("mesh %s: builtin CA kept in memory only (no --state-dir): a restart makes a new one",
                            mesh.name)  # fmt: skip
        self._cas[key] = ca
        return ca

    def _identity(
        self,
        dp: Dataplane,
        ca: CertificateAuthority,
        ca_fingerprint: str,
        lifetime: datetime.timedelta,
        now: datetime.datetime,
    ) -> Identity:
        hit = self._uris.get(dp.node_id)
        if hit is None or hit[0] is not dp:  # the same Dataplane object: its tags are the same
            hit = self._uris[dp.node_id] = (dp, tuple(identity_uris(dp.mesh, tag_set(dp))))
        uris = hit[1]
        current = self._identities.get(dp.node_id)
        if current is None and self.state is not None:
            current = self.state.load_identity(dp.mesh, dp.name)
        if current is not None and _fits(current, uris, ca_fingerprint, lifetime, now):
            return current
        identity = issue_identity(ca, dp.mesh, uris, lifetime, self.spec, now)
        self.issued += 1
        if self.state is not None:
            self.state.save_identity(dp.name, identity)
        reason = "first identity" if current is None else "re-issued"
        log.debug("%s: %s, valid until %s", dp.node_id, reason, identity.not_after.isoformat())
        return identity


def _fits(
    identity: Identity,
    uris: tuple[str, ...],
    ca_fingerprint: str,
    lifetime: datetime.timedelta,
    now: datetime.datetime,
) -> bool:
    same_lifetime = abs((identity.not_after - identity.generation) - lifetime) < datetime.timedelta(seconds=1)
    return (
        identity.uris == uris
        and identity.ca_fingerprint == ca_fingerprint
        and same_lifetime
        and not identity.expiring_soon(now)
    )
