"""``meshxds token``: the admin token of a store (``--admin``), or a dataplane token for one proxy (``--node``).

``--admin`` prints the store's admin token (created on first use, as at first start). ``--node MESH.NAME`` prints
a dataplane token in Kuma's format, as ``kumactl generate dataplane-token``
(``app/kumactl/cmd/generate/generate_dataplane_token.go``): to stdout without a newline, signed with
``dataplane-token-signing-key-<mesh>-<n>`` from the state directory (created on first use). ``--revoke JTI``
adds a token id to the mesh's revocation list instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import jwt
import psycopg

from meshxds.api.token import admin_token
from meshxds.security.state import state_dir as dataplane_state_dir
from meshxds.store.folder import FolderStore
from meshxds.store.model import Store, StoreError
from meshxds.store.postgres import PostgresStore, is_postgres_url


async def open_store(url: str | None, state_dir: str | None) -> Store:
    if url:
        return await PostgresStore.open(url)
    return FolderStore([], state_dir=state_dir)


async def print_token(args: argparse.Namespace) -> int:
    store = await open_store(args.store, args.state_dir)
    try:
        print(await admin_token(store))
    finally:
        await store.close()
    return 0


def admin_run(args: argparse.Namespace) -> int:
    if not args.admin:
        print("error: give --admin (the API admin token) or --node MESH.NAME (a dataplane token)", file=sys.stderr)
        return 1
    if args.store and not is_postgres_url(args.store):
        print(f"error: --store must be a postgres://USER@HOST:PORT/DB URL, not {args.store!r}", file=sys.stderr)
        return 1
    if not args.store and not args.state_dir:
        print(
            "error: give --store postgres://... or --state-dir DIR (where the server keeps its token)", file=sys.stderr
        )
        return 1
    try:
        return asyncio.run(print_token(args))
    except (StoreError, OSError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def parse_tags(values: list[str]) -> dict[str, list[str]]:
    """``--tag k=v1,v2`` (repeatable), as kumactl's ``--tag``."""
    out: dict[str, list[str]] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise ValueError(f"--tag {value!r}: expected KEY=VALUE[,VALUE...]")
        out.setdefault(key, []).extend(v for v in rest.split(",") if v)
    return out


def dataplane_run(args: argparse.Namespace) -> int:
    state = dataplane_state_dir(args.state_dir)
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


def run(args: argparse.Namespace) -> int:
    if args.node:
        return dataplane_run(args)
    return admin_run(args)
