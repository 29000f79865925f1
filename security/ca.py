"""A mesh's certificate authority: Kuma's builtin root (generated) or a provided one (the user's files).

Builtin roots follow ``pkg/plugins/ca/builtin/ca.go`` (``newCACert``): subject O=Kuma, OU=Mesh,
CN=<mesh>, URI SAN ``spiffe://<mesh>`` (the trust domain is the mesh name), serial 0, notBefore
now-10s, notAfter now+10y (or ``conf.caCert.expiration``), KeyUsage CertSign|CRLSign, CA:true.
Unlike Kuma the key defaults to EC P-256 (``conf.caCert.RSAbits`` asks for RSA).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from meshxds.security.keys import (
    EC_P256,
    KeySpec,
    PrivateKey,
    cert_pem,
    fingerprint,
    key_pem,
    load_cert,
    load_key,
    same_public_key,
)

CLOCK_SKEW = datetime.timedelta(seconds=10)  # Kuma's DefaultAllowedClockSkew
CA_VALIDITY = datetime.timedelta(days=3650)  # Kuma's DefaultCACertValidityPeriod (10 * 365 * 24h)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA key pair, parsed once; ``cert_pem`` is what Envoy trusts (``mesh_ca:secret:<mesh>``)."""

    cert: x509.Certificate = field(repr=False)
    key: PrivateKey = field(repr=False)
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)

    @classmethod
    def of(cls, cert: x509.Certificate, key: PrivateKey) -> CertificateAuthority:
        return cls(cert, key, cert_pem(cert), key_pem(key))

    @classmethod
    def load(cls, cert_bytes: bytes, key_bytes: bytes, what: str) -> CertificateAuthority:
        """A CA from PEM bytes; a clear error when it is not a CA or the key does not belong to it.

        Kuma checks the same for provided CAs (``pkg/plugins/ca/provided/validator.go``)."""
        cert = load_cert(cert_bytes, f"{what} cert")
        key = load_key(key_bytes, f"{what} key")
        if not same_public_key(key, cert):
            raise ValueError(f"{what}: the key does not belong to the certificate")
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise ValueError(
                f"{what}: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)"
            )
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.key_cert_sign:
                raise ValueError(
                    f"{what}: key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)"
                )
        except x509.ExtensionNotFound:
            pass
        return cls(cert, key, cert_bytes, key_bytes)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self.key, hashes.SHA256())


def new_root_ca(
    trust_domain: str,
    spec: KeySpec = EC_P256,
    valid_for: datetime.timedelta = CA_VALIDITY,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """A self-signed root for one mesh (trust domain = mesh name), shaped as Kuma's builtin CA."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = spec.generate()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kuma"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, trust_domain),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return CertificateAuthority.of(builder.sign(key, hashes.SHA256()), key)


def _serial() -> int:
    """Kuma uses serial 0 for roots; RFC 5280 wants a positive one and some verifiers insist, so ours is random."""
    return x509.random_serial_number()


def key_usage(*names: str) -> x509.KeyUsage:
    """A KeyUsage with only ``names`` set (e.g. ``"key_cert_sign"``)."""
    flags = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    unknown = set(names) - set(flags)
    if unknown:
        raise ValueError(f"unknown key usage {sorted(unknown)}")
    return x509.KeyUsage(**{flag: flag in names for flag in flags})
