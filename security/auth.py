"""Who may open an ADS stream for a node: Kuma's dataplane-token authentication, stream by stream.

Kuma (``pkg/xds/auth/callbacks.go``, ``universal/authenticator.go``) reads the ``authorization`` gRPC
metadata once per stream, validates the token against the signing keys of the Dataplane's mesh, and
checks name, mesh and tags against the Dataplane. We do the same before a single byte of
configuration is sent, and go further (``kuma-security.md`` §7 EXCEED): a stream is re-checked when
the revocation list or the signing keys change, and it is closed when its token expires.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from meshxds.resources.model import Dataplane
from meshxds.security.identity import tag_set
from meshxds.security.state import StateDir
from meshxds.security.tokens import (
    DataplaneClaims,
    PermissionDenied,
    Unauthenticated,
    authorize,
    verify_token,
)

AUTHORIZATION = "authorization"
DataplaneLookup = Callable[[str], Dataplane | None]  # node id -> its Dataplane (None: unknown)


@dataclass(frozen=True)
class Grant:
    """A stream's successful authentication: what to re-check later, and when it ends."""

    node_id: str
    mesh: str
    token: str
    claims: DataplaneClaims

    @property
    def expires(self) -> datetime.datetime:
        return self.claims.expires


def credential(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    """The raw token from the ``authorization`` metadata (no ``Bearer`` prefix in Kuma's format)."""
    values = [v for k, v in metadata if k.lower() == AUTHORIZATION]
    if len(values) > 1:
        raise Unauthenticated(f'request must have exactly 1 "authorization" header, got {len(values)}')
    if not values:
        return ""
    value = values[0].decode() if isinstance(values[0], bytes) else values[0]
    return value.removeprefix("Bearer ").strip()


class DataplaneAuthenticator:
    """Checks a token against the state directory's signing keys and revocation lists.

    Keys and revocations are read from files, cached by modification time, so a revocation or a key
    rotation written to the state directory takes effect on the next check without a restart."""

    def __init__(self, state: StateDir, lookup: DataplaneLookup) -> None:
        self.state = state
        self.lookup = lookup
        self._files: dict[Path, tuple[int, object]] = {}

    def _cached(self, path: Path, read: Callable[[], object]) -> object:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = -1
        hit = self._files.get(path)
        if hit is None or hit[0] != mtime:
            hit = (mtime, read())
            self._files[path] = hit
        return hit[1]

    def public_key(self, mesh: str, kid: str) -> rsa.RSAPublicKey | None:
        if not kid.isdigit():
            return None
        key = self._cached(self.state.signing_key_path(mesh, kid), lambda: self.state.public_key(mesh, kid))
        return key if isinstance(key, rsa.RSAPublicKey) else None

    def revoked(self, mesh: str) -> frozenset[str]:
        ids = self._cached(self.state.revocations_path(mesh), lambda: self.state.revoked(mesh))
        return ids if isinstance(ids, frozenset) else frozenset()

    def authenticate(self, node_id: str, token: str) -> Grant:
        """A Grant, or ``Unauthenticated`` / ``PermissionDenied`` with Kuma's message."""
        mesh, dot, name = node_id.partition(".")
        if not dot or not name:
            raise PermissionDenied(f"node id {node_id!r} is not <mesh>.<dataplane name>")
        claims = verify_token(token, mesh, self.public_key, self.revoked(mesh))
        dp = self.lookup(node_id)
        # An unknown node: the tags cannot be checked yet; the server answers NOT_FOUND next.
        tags = tag_set(dp) if dp is not None else {k: frozenset(v) for k, v in claims.tags.items()}
        authorize(claims, name, mesh, tags)
        return Grant(node_id, mesh, token, claims)

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """Changes when any signing key or revocation list is written, added or removed."""
        folder = self.state.root / "tokens"
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()))
        except OSError:
            return ()

    def recheck(self, grant: Grant) -> None:
        """Raise if the grant no longer holds: token revoked, signing key gone, or expired."""
        verify_token(grant.token, grant.mesh, self.public_key, self.revoked(grant.mesh))
