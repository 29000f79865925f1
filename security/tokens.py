"""Dataplane tokens in Kuma's format, and the checks that tie a token to the proxy presenting it.

Format (``pkg/core/tokens/issuer.go``, ``pkg/tokens/builtin/issuer/token.go``): an RS256 JWT with a
``kid`` header; claims ``Name``, ``Mesh``, ``Tags`` ({tag: [values]}), ``Type``, ``Workload`` (always
present, capitalised), plus ``jti`` (uuid4), ``iat`` = ``nbf`` = now-5s and ``exp`` = now+validFor+5s.
Keys are RSA-2048, one family per mesh, ``kid`` = the key's serial (``"1"`` first).

Checks (``pkg/core/tokens/validator.go``, ``pkg/xds/auth/universal/authenticator.go``) keep Kuma's
message texts. Where Kuma is weak we do better (``kuma-security.md`` §7 EXCEED): a missing header
gets its own message instead of a JWT parse error, HS256 is refused (no alg confusion), ``exp`` is
required, the ``Type`` claim is enforced for dataplanes, and failures carry UNAUTHENTICATED /
PERMISSION_DENIED instead of UNKNOWN.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

KID_HEADER = "kid"
CLOCK_BACKDATE = datetime.timedelta(seconds=5)
DATAPLANE_TYPES = ("", "dataplane", "sidecar")
MISSING_TOKEN = (
    'no "authorization" metadata on the stream: pass a dataplane token '
    "(generate one with `meshxds token --node <mesh>.<name>` and give it to `meshxds bootstrap --token-file`)"
)


class AuthError(Exception):
    """A refused stream; ``code`` is the gRPC status name (UNAUTHENTICATED or PERMISSION_DENIED)."""

    code = "UNAUTHENTICATED"


class Unauthenticated(AuthError):
    code = "UNAUTHENTICATED"


class PermissionDenied(AuthError):
    code = "PERMISSION_DENIED"


@dataclass(frozen=True)
class DataplaneClaims:
    name: str
    mesh: str
    tags: Mapping[str, tuple[str, ...]]
    type: str
    workload: str
    jti: str
    expires: datetime.datetime
    raw: Mapping[str, object] = field(repr=False, compare=False, default_factory=dict)


def issue_token(
    key: rsa.RSAPrivateKey,
    kid: str,
    name: str,
    mesh: str,
    valid_for: datetime.timedelta,
    tags: Mapping[str, Collection[str]] | None = None,
    proxy_type: str = "",
    workload: str = "",
    now: datetime.datetime | None = None,
) -> str:
    """A token as ``kumactl generate dataplane-token`` makes it (same claims, same backdating)."""
    now = (now or datetime.datetime.now(datetime.UTC)) - CLOCK_BACKDATE
    claims = {
        "Name": name,
        "Mesh": mesh,
        "Tags": {k: sorted(v) for k, v in (tags or {}).items()},
        "Type": proxy_type,
        "Workload": workload,
        "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + valid_for + CLOCK_BACKDATE).timestamp()),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={KID_HEADER: kid})


KeyLookup = Callable[[str, str], rsa.RSAPublicKey | None]  # (mesh, kid) -> public key


def verify_token(
    token: str,
    mesh: str,
    public_key: KeyLookup,
    revoked: Collection[str] = (),
) -> DataplaneClaims:
    """The token's claims, checked against the signing keys of ``mesh`` (the Dataplane's mesh, as Kuma does)."""
    if not token:
        raise Unauthenticated(MISSING_TOKEN)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"could not parse token: {exc}") from None
    kid = header.get(KID_HEADER)
    if kid is None:
        raise Unauthenticated("could not parse token: JWT token must have kid header")
    if not isinstance(kid, str):
        raise Unauthenticated("could not parse token: JWT token kid header must be a string")
    if header.get("alg") != "RS256":
        raise Unauthenticated(
            f"could not parse token: unsupported token alg {header.get('alg')}. Allowed algorithm is RS256"
        )
    key = public_key(mesh, kid)
    if key is None:
        raise Unauthenticated(
            f"there is no signing key with KID {kid}. Secret of name "
            f'"dataplane-token-signing-key-{mesh}-{kid}" in mesh "{mesh}" is not found. '
            "If signing key was rotated, regenerate the token"
        )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
        )
    except jwt.ImmatureSignatureError as exc:
        raise Unauthenticated(
            f"token is not yet valid: 'valid_from' date is in the future. Check if the system clock on the "
            f"instance that issued the token is set correctly: {exc}"
        ) from None
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("could not parse token: token has invalid claims: token is expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"could not parse token: {exc}") from None
    jti = str(claims.get("jti", ""))
    if jti and jti in revoked:
        raise Unauthenticated("token is revoked")
    raw_tags = claims.get("Tags") or {}
    if not isinstance(raw_tags, dict):
        raise Unauthenticated("could not parse token: Tags must be a map of lists")
    return DataplaneClaims(
        name=str(claims.get("Name", "")),
        mesh=str(claims.get("Mesh", "")),
        tags={str(k): tuple(str(x) for x in (v or [])) for k, v in raw_tags.items()},
        type=str(claims.get("Type", "")),
        workload=str(claims.get("Workload", "")),
        jti=jti,
        expires=datetime.datetime.fromtimestamp(int(claims["exp"]), datetime.UTC),
        raw=claims,
    )


def authorize(claims: DataplaneClaims, name: str, mesh: str, tags: Mapping[str, Collection[str]]) -> None:
    """Kuma's ``authDataplane``: the token's name, mesh and tags must fit the proxy (empty claims match any)."""
    if claims.name and claims.name != name:
        raise PermissionDenied(f"proxy name from requestor: {name} is different than in token: {claims.name}")
    if claims.mesh and claims.mesh != mesh:
        raise PermissionDenied(f"proxy mesh from requestor: {mesh} is different than in token: {claims.mesh}")
    for tag, allowed in claims.tags.items():
        values = tags.get(tag)
        if not values:
            raise PermissionDenied(f'dataplane has no tag "{tag}" required by the token')
        for value in sorted(values):
            if value not in allowed:
                quoted = "[" + " ".join(f'"{v}"' for v in sorted(allowed)) + "]"
                raise PermissionDenied(
                    f'dataplane contains tag "{tag}" with value "{value}" which is not allowed with this token. '
                    f"Allowed values in token are {quoted}"
                )
    if claims.type not in DATAPLANE_TYPES:
        raise PermissionDenied(f"token of type {claims.type!r} cannot authenticate a dataplane")


def parse_revocations(text: str) -> frozenset[str]:
    """Kuma's revocation list: token ids separated by commas (newlines and spaces tolerated)."""
    return frozenset(x.strip() for x in text.replace("\n", ",").split(",") if x.strip())
