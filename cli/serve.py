"""``meshxds serve PATH...``: the ADS server on the resource files, reloading them when they change.

The command only parses, starts ``control.service.Service`` and waits for SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from meshxds.control.logs import setup_logging
from meshxds.control.service import Service


async def serve(args: argparse.Namespace) -> int:
    service = Service(args.paths, zone=args.zone, poll_interval=args.poll_interval)
    try:
        await service.start(args.address, args.port, args.debug_port)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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


def run(args: argparse.Namespace) -> int:
    setup_logging()
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    return asyncio.run(serve(args))
