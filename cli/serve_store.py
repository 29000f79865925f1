"""``meshxds serve`` with ``--store``, ``--api-port`` or ``--state-dir``: the control plane you can run.

* ``--store postgres://USER@HOST:PORT/DB``: every resource in PostgreSQL; any number of replicas, one
  leader; Kuma's API (writes need the admin token) and ``/metrics`` on ``--api-port``.
* the folder (``serve PATH``) with ``--state-dir``: VIPs and generated MeshServices survive restarts;
  with ``--api-port`` the API is read-only and ``/metrics`` is served.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import psycopg
from aiohttp import web

from meshxds.api.app import start_api, start_folder_api
from meshxds.cli.serve import announce_security
from meshxds.control.folder_service import FolderService, FolderView
from meshxds.control.metrics import Metrics
from meshxds.control.store_service import StoreService
from meshxds.security.state import state_dir
from meshxds.store.folder import FolderStore
from meshxds.store.model import StoreError
from meshxds.store.postgres import PostgresStore, is_postgres_url


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_postgres(args: argparse.Namespace) -> int:
    store = await PostgresStore.open(args.store)
    service = StoreService(store, zone=args.zone)
    await service.start(args.address, args.port)
    if not args.insecure:  # the secure ADS (TLS, tokens) is wired into the folder service only so far
        print("WARNING: with --store the ADS port is plaintext and takes no tokens (not wired yet)", file=sys.stderr)
    runner: web.AppRunner | None = None
    where = f"ADS on {args.address}:{service.ads.port}"
    if args.api_port is not None:
        runner, port = await start_api(service, args.address, args.api_port)
        where += f", API http://{args.address}:{port}"
    print(f"meshxds: {where}; store {store.description}", file=sys.stderr)
    await until_signalled()
    if runner is not None:
        await runner.cleanup()
    await service.stop()
    return 0


async def serve_folder(args: argparse.Namespace) -> int:
    store = FolderStore(args.paths, zone=args.zone, state_dir=args.state_dir)
    state = state_dir(args.state_dir).root
    service = FolderService(
        store, args.zone, args.poll_interval, state_dir=state, secure=not args.insecure, tls_hosts=args.tls_host
    )
    await service.start(args.address, args.port, args.debug_port)
    announce_security(service, state)
    runner: web.AppRunner | None = None
    where = f"ADS on {args.address}:{service.ads.port}"
    if args.api_port is not None:
        metrics = Metrics(service.cache)
        runner, port = await start_folder_api(store, FolderView(service), metrics, args.address, args.api_port)
        where += f", API http://{args.address}:{port} (read-only)"
    print(f"meshxds: {where}; watching {', '.join(args.paths)}", file=sys.stderr)
    await until_signalled()
    if runner is not None:
        await runner.cleanup()
    await service.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Called by ``cli/serve.py`` once logging is set up and the ADS port is known to be free."""
    if args.store:
        if not is_postgres_url(args.store):
            print(f"error: --store must be a postgres://USER@HOST:PORT/DB URL, not {args.store!r}", file=sys.stderr)
            return 1
        if args.paths:
            print("error: give resource folders or --store, not both", file=sys.stderr)
            return 1
    elif not args.paths:
        print("error: give resource files or folders, or --store postgres://...", file=sys.stderr)
        return 1
    try:
        return asyncio.run(serve_postgres(args) if args.store else serve_folder(args))
    except (StoreError, OSError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
