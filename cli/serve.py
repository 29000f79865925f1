"""``meshxds serve PATH...``: the ADS server on the resource files, reloading them when they change.

The command only parses, starts ``control.service.Service`` and waits for SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from meshxds.control.logs import setup_logging
from meshxds.control.service import Service
from meshxds.security.state import state_dir

log = logging.getLogger("meshxds.serve")


async def serve(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir).root
    try:
        service = Service(
            args.paths,
            zone=args.zone,
            poll_interval=args.poll_interval,
            state_dir=state,
            secure=not args.insecure,
            tls_hosts=args.tls_host,
        )
        await service.start(args.address, args.port, args.debug_port)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    announce_security(service, state)
    debug = f", debug http://{args.address}:{service.debug.port}/snapshots" if args.debug_port is not None else ""
    watching = ", ".join(args.paths)
    print(f"meshxds: ADS on {args.address}:{service.ads.port}{debug}; watching {watching}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()
    return 0


def announce_security(service: Service, state: Path) -> None:
    """Say how the ADS port is protected; loudly when it is not."""
    if service.tls is None:
        banner = "!" * 100
        print(
            f"{banner}\nWARNING: --insecure: ADS is PLAINTEXT and trusts any node id. Anyone who can reach this port"
            f" gets any proxy's configuration.\nUse only for local experiments.\n{banner}",
            file=sys.stderr,
        )
        return
    ca = state / "control-plane" / "ca.crt"
    log.info("ADS over TLS; dataplane tokens required; control-plane CA %s SHA-256 %s", ca, service.tls.ca_fingerprint)
    log.info("server certificate for %s", ", ".join(service.tls.hosts))


def run(args: argparse.Namespace) -> int:
    setup_logging()
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    return asyncio.run(serve(args))
