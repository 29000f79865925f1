"""The state directory: what must survive a restart (CAs, issued identities, token signing keys).

Kuma keeps builtin CAs and signing keys as Secrets in its store; we keep the same things as files under
``--state-dir`` with Kuma's secret names, so a restart never regenerates a CA (which would break every
running proxy's trust) and never re-issues every identity at once (Kuma's in-memory cert cache does).

Layout::

    meshes/<mesh>/<mesh>.ca-builtin-cert-<backend>.pem   builtin CA certificate
    meshes/<mesh>/<mesh>.ca-builtin-key-<backend>.pem    its key (0600)
    identities/<mesh>/<name>.json                        the last identity issued to a Dataplane (0600)
    tokens/dataplane-token-signing-key-<mesh>-<n>.pem    RSA token signing keys (0600), kid = n
    tokens/dataplane-token-revocations-<mesh>            revoked token ids, comma separated
    control-plane/ca.{crt,key}, server.{crt,key}         the ADS server's own CA and certificate

Writes go to a temporary file renamed into place, so a crash never leaves half a key.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meshxds.resources.mtls import parse_mesh_duration
from meshxds.security.ca import CertificateAuthority, new_root_ca
from meshxds.security.identity import Identity
from meshxds.security.keys import EC_P256, KeySpec, load_key
from meshxds.security.tokens import issue_token, parse_revocations

DEFAULT_STATE_DIR = "~/.meshxds"
SIGNING_KEY_PREFIX = "dataplane-token-signing-key-"
REVOCATIONS_PREFIX = "dataplane-token-revocations-"
TOKEN_KEY_BITS = 2048  # Kuma's util_rsa.DefaultKeySize


def state_dir(value: str | Path | None) -> StateDir:
    """``--state-dir``, else ``$MESHXDS_STATE_DIR``, else ``~/.meshxds``."""
    return StateDir(Path(value or os.environ.get("MESHXDS_STATE_DIR") or DEFAULT_STATE_DIR).expanduser())


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically write ``data`` with ``mode`` (the directory is created 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class StateDir:
    """Files under one root; every method is safe to call again (load if present, else create once)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---------------------------------------------------------------- mesh CAs

    def ca_paths(self, mesh: str, backend: str) -> tuple[Path, Path]:
        folder = self.root / "meshes" / mesh
        return folder / f"{mesh}.ca-builtin-cert-{backend}.pem", folder / f"{mesh}.ca-builtin-key-{backend}.pem"

    def builtin_ca(
        self, mesh: str, backend: str, spec: KeySpec = EC_P256, valid_for: datetime.timedelta | None = None
    ) -> tuple[CertificateAuthority, bool]:
        """The mesh's builtin CA, generated on first use only; (ca, created)."""
        cert_path, key_path = self.ca_paths(mesh, backend)
        if cert_path.exists() and key_path.exists():
            what = f"{cert_path.parent}: CA of mesh {mesh!r} backend {backend!r}"
            return CertificateAuthority.load(cert_path.read_bytes(), key_path.read_bytes(), what), False
        ca = new_root_ca(mesh, spec) if valid_for is None else new_root_ca(mesh, spec, valid_for)
        write_private(key_path, ca.key_pem)
        write_private(cert_path, ca.cert_pem, 0o644)
        return ca, True

    # ---------------------------------------------------------------- identities

    def identity_path(self, mesh: str, name: str) -> Path:
        return self.root / "identities" / mesh / f"{name}.json"

    def save_identity(self, name: str, identity: Identity) -> None:
        write_private(self.identity_path(identity.mesh, name), json.dumps(identity.to_json()).encode())

    def load_identity(self, mesh: str, name: str) -> Identity | None:
        """The stored identity, or None when absent or unreadable (then it is simply issued again)."""
        path = self.identity_path(mesh, name)
        try:
            return Identity.from_json(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def forget_identity(self, mesh: str, name: str) -> None:
        self.identity_path(mesh, name).unlink(missing_ok=True)

    # ---------------------------------------------------------------- token signing keys

    def signing_key_path(self, mesh: str, kid: str) -> Path:
        return self.root / "tokens" / f"{SIGNING_KEY_PREFIX}{mesh}-{kid}.pem"

    def signing_kids(self, mesh: str) -> list[str]:
        """The serials of the mesh's signing keys, oldest first (Kuma: latest = highest serial)."""
        pattern = re.compile(re.escape(f"{SIGNING_KEY_PREFIX}{mesh}-") + r"(\d+)\.pem$")
        folder = self.root / "tokens"
        found = [m.group(1) for p in folder.glob("*.pem") if (m := pattern.match(p.name))] if folder.exists() else []
        return sorted(found, key=int)

    def signing_key(self, mesh: str, create: bool = True) -> tuple[str, rsa.RSAPrivateKey] | None:
        """The mesh's latest signing key (kid, key); created as kid "1" when there is none and ``create``."""
        kids = self.signing_kids(mesh)
        if kids:
            kid = kids[-1]
            key = load_key(self.signing_key_path(mesh, kid).read_bytes(), f"signing key {kid} of mesh {mesh!r}")
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"signing key {kid} of mesh {mesh!r} is not an RSA key")
            return kid, key
        if not create:
            return None
        key = rsa.generate_private_key(public_exponent=65537, key_size=TOKEN_KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )  # PKCS#1 "RSA PRIVATE KEY", as Kuma stores it
        write_private(self.signing_key_path(mesh, "1"), pem)
        return "1", key

    def public_key(self, mesh: str, kid: str) -> rsa.RSAPublicKey | None:
        """The public half of key ``kid`` of ``mesh`` (None when there is no such key)."""
        if not kid.isdigit():
            return None
        path = self.signing_key_path(mesh, kid)
        try:
            key = load_key(path.read_bytes(), str(path))
        except (OSError, ValueError):
            return None
        return key.public_key() if isinstance(key, rsa.RSAPrivateKey) else None

    def revocations_path(self, mesh: str) -> Path:
        return self.root / "tokens" / f"{REVOCATIONS_PREFIX}{mesh}"

    def revoked(self, mesh: str) -> frozenset[str]:
        try:
            return parse_revocations(self.revocations_path(mesh).read_text())
        except OSError:
            return frozenset()

    def revoke(self, mesh: str, jti: str) -> None:
        ids = sorted(self.revoked(mesh) | {jti})
        write_private(self.revocations_path(mesh), ",".join(ids).encode(), 0o644)

    def token_for(self, node: str, valid_for: str, tags: Mapping[str, list[str]] | None = None) -> str:
        """A dataplane token for ``<mesh>.<name>`` signed with the mesh's latest key (created on first use)."""
        mesh, _, name = node.partition(".")
        if not mesh or not name:
            raise ValueError(f"--node {node!r}: expected MESH.NAME, e.g. default.web-1")
        try:
            duration = parse_mesh_duration(valid_for)
        except ValueError:
            raise ValueError(f"--valid-for {valid_for!r}: expected a duration such as 24h, 30d or 10m") from None
        found = self.signing_key(mesh)
        assert found is not None
        kid, key = found
        return issue_token(key, kid, name, mesh, duration, tags)

    # ---------------------------------------------------------------- control plane

    @property
    def control_plane(self) -> Path:
        return self.root / "control-plane"
