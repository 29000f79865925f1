"""Workload identity certificates, shaped as Kuma's ``NewWorkloadCert`` (``pkg/core/ca/issuer/issuer.go``).

URI SANs: ``spiffe://<mesh>/<service>`` for every ``kuma.io/service`` value, then ``kuma://<tag>/<value>``
for every tag (service included), keys and values sorted, from the tags of all the Dataplane's
inbounds (``Dataplane.TagSet``). Empty subject, random serial, notBefore now-10s, notAfter
now+24h (or ``dpCert.rotation.expiration``), digitalSignature|keyEncipherment|keyAgreement,
serverAuth+clientAuth, not a CA. The key is EC P-256 unless RSA is asked for.

Rotation (``pkg/xds/secrets/secrets.go`` ``ExpiringSoon``): after 4/5 of the lifetime.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshxds.resources.model import SERVICE_TAG, Dataplane
from meshxds.security.ca import CLOCK_SKEW, CertificateAuthority, key_usage
from meshxds.security.keys import EC_P256, KeySpec, cert_pem, key_pem, load_cert

WORKLOAD_VALIDITY = datetime.timedelta(hours=24)  # Kuma's DefaultWorkloadCertValidityPeriod
WORKLOAD_LABEL = "kuma.io/workload"

TagSet = Mapping[str, frozenset[str]]


def tag_set(dp: Dataplane) -> dict[str, frozenset[str]]:
    """Kuma's ``Dataplane.TagSet``: every tag of every inbound, with all its values.

    With no service tag at all, Kuma falls back to the ``kuma.io/workload`` label
    (``pkg/xds/secrets/identity_tags.go``)."""
    tags: dict[str, set[str]] = {}
    for inbound in dp.networking.inbound:
        for key, value in inbound.tags.items():
            tags.setdefault(key, set()).add(value)
    if SERVICE_TAG not in tags and dp.labels.get(WORKLOAD_LABEL):
        tags[SERVICE_TAG] = {dp.labels[WORKLOAD_LABEL]}
    return {k: frozenset(v) for k, v in tags.items()}


def identity_uris(mesh: str, tags: TagSet) -> list[str]:
    """The URI SANs of a workload certificate, in Kuma's order."""
    uris = [f"spiffe://{mesh}/{service}" for service in sorted(tags.get(SERVICE_TAG, ()))]
    for key in sorted(tags):
        uris += [f"kuma://{key}/{value}" for value in sorted(tags[key])]
    return uris


@dataclass(frozen=True)
class Identity:
    """One proxy's identity: PEMs for SDS, plus what decides when to re-issue it."""

    mesh: str
    uris: tuple[str, ...]
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    not_before: datetime.datetime
    not_after: datetime.datetime
    ca_fingerprint: str  # the CA that signed it: a new CA means a new identity
    serial: int

    @property
    def generation(self) -> datetime.datetime:
        """When it was issued (Kuma's ``Info.Generation``): notBefore plus the clock-skew allowance."""
        return self.not_before + CLOCK_SKEW

    @property
    def rotate_at(self) -> datetime.datetime:
        """4/5 of the lifetime after issue, as Kuma's ``ExpiringSoon``."""
        return self.generation + (self.not_after - self.generation) * 4 / 5

    def expiring_soon(self, now: datetime.datetime) -> bool:
        return now > self.rotate_at

    def to_json(self) -> dict[str, object]:
        return {
            "mesh": self.mesh,
            "uris": list(self.uris),
            "cert": self.cert_pem.decode(),
            "key": self.key_pem.decode(),
            "caFingerprint": self.ca_fingerprint,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Identity:
        """Read back what ``to_json`` wrote; dates and serial come from the certificate itself."""
        cert_bytes = str(data["cert"]).encode()
        cert = load_cert(cert_bytes, "stored identity")
        uris = data["uris"]
        if not isinstance(uris, list):
            raise TypeError("uris must be a list")
        return cls(
            mesh=str(data["mesh"]),
            uris=tuple(str(u) for u in uris),
            cert_pem=cert_bytes,
            key_pem=str(data["key"]).encode(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            ca_fingerprint=str(data["caFingerprint"]),
            serial=cert.serial_number,
        )


def issue_identity(
    ca: CertificateAuthority,
    mesh: str,
    uris: Iterable[str],
    valid_for: datetime.timedelta = WORKLOAD_VALIDITY,
    spec: KeySpec = EC_P256,
    now: datetime.datetime | None = None,
) -> Identity:
    """A new key and a certificate for it signed by ``ca``."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = spec.generate()
    names = tuple(uris)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage("digital_signature", "key_encipherment", "key_agreement"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        # An empty subject makes the SAN extension critical (RFC 5280 §4.2.1.6), as Go does.
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in names]), critical=True)
    )
    cert = ca.sign(builder)
    return Identity(
        mesh=mesh,
        uris=names,
        cert_pem=cert_pem(cert),
        key_pem=key_pem(key),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        ca_fingerprint=ca.fingerprint,
        serial=cert.serial_number,
    )
