"""``meshxds token --node MESH.NAME``: a dataplane token in Kuma's format, signed with the mesh's key.

Like ``kumactl generate dataplane-token`` (``app/kumactl/cmd/generate/generate_dataplane_token.go``) the
token goes to stdout without a newline; the signing key ``dataplane-token-signing-key-<mesh>-1`` is created
in the state directory on first use. Revoke with ``--revoke JTI`` (Kuma's revocation list, per mesh).
"""

from __future__ import annotations

import argparse
import sys

import jwt

from meshxds.security.state import state_dir


def parse_tags(values: list[str]) -> dict[str, list[str]]:
    """``--tag k=v1,v2`` (repeatable), as kumactl's ``--tag``."""
    out: dict[str, list[str]] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise ValueError(f"--tag {value!r}: expected KEY=VALUE[,VALUE...]")
        out.setdefault(key, []).extend(v for v in rest.split(",") if v)
    return out


def run(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    try:
        if args.revoke:
            mesh = args.node.partition(".")[0]
            state.revoke(mesh, args.revoke)
            print(f"revoked token {args.revoke} in mesh {mesh!r} ({state.revocations_path(mesh)})", file=sys.stderr)
            return 0
        token = state.token_for(args.node, args.valid_for, parse_tags(args.tag))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    claims = jwt.decode(token, options={"verify_signature": False})
    print(f"token id (jti) {claims['jti']}, valid for {args.valid_for}", file=sys.stderr)
    sys.stdout.write(token)
    return 0
