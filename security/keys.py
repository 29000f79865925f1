"""Private keys and PEM: EC P-256 by default, RSA on request.

Kuma generates RSA-2048 keys for every workload certificate (``pkg/util/rsa/keygen.go``); an RSA
key costs tens of milliseconds, a P-256 key a few microseconds, which is what lets a control
plane issue thousands of identities at start without a queue. RSA stays available (``rsa`` /
``rsa:3072``) for peers that cannot do ECDSA.
"""

from __future__ import annotations

from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ec", "rsa"]
DEFAULT_RSA_BITS = 2048


class KeySpec:
    """A key type as written on the command line: ``ec`` (P-256), ``rsa`` or ``rsa:<bits>``."""

    __slots__ = ("bits", "kind")

    def __init__(self, kind: KeyType = "ec", bits: int = DEFAULT_RSA_BITS) -> None:
        self.kind: KeyType = kind
        self.bits = bits

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        kind, _, bits = text.strip().lower().partition(":")
        if kind in ("ec", "ecdsa", "p256", "p-256") and not bits:
            return cls("ec")
        if kind == "rsa":
            n = int(bits) if bits.isdigit() else DEFAULT_RSA_BITS if not bits else 0
            if n < 2048:
                raise ValueError(f"key type {text!r}: RSA keys must have at least 2048 bits")
            return cls("rsa", n)
        raise ValueError(f"key type {text!r}: expected ec, rsa or rsa:<bits>")

    def generate(self) -> PrivateKey:
        if self.kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
        return ec.generate_private_key(ec.SECP256R1())

    def __repr__(self) -> str:
        return f"rsa:{self.bits}" if self.kind == "rsa" else "ec"


EC_P256 = KeySpec("ec")


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file is written mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes, what: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{what}: only EC and RSA keys are supported")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ValueError(f"{what}: not a PEM certificate ({exc})") from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated hex, as ``openssl x509 -fingerprint -sha256`` prints it."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def same_public_key(key: PrivateKey, cert: x509.Certificate) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, fmt) == cert.public_key().public_bytes(enc, fmt)
