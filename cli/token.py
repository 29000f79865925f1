"""``meshxds token --admin``: print the admin token of a store (created on first use, as at first start)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg

from meshxds.api.token import admin_token
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


def run(args: argparse.Namespace) -> int:
    if not args.admin:
        print("error: only --admin tokens exist so far", file=sys.stderr)
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
