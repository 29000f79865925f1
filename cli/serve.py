"""``meshxds serve PATH...``: the ADS server on the resource files, reloading them when they change.

The command parses, checks the port, starts ``control.service.Service`` and handles signals:
SIGHUP reloads the input; SIGTERM/SIGINT stop accepting, end every stream with UNAVAILABLE (Envoy
reconnects elsewhere) and exit within the grace period; a second one exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path

from meshxds.control.guard import RemovalGuard
from meshxds.control.logs import setup_logging
from meshxds.control.service import Service
from meshxds.control.supervise import QuietLoopErrors
from meshxds.security.state import state_dir
from meshxds.xds.server import Limits

log = logging.getLogger("meshxds.serve")


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: each Envoy is one socket, and 1,024 goes fast."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def port_in_use(address: str, port: int) -> str | None:
    """A clear line when the port is taken, checked before any input is loaded."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"address {address}:{port} is already in use"
            return f"cannot listen on {address}:{port}: {exc.strerror or exc}"
    return None


async def serve(args: argparse.Namespace) -> int:
    QuietLoopErrors().install(asyncio.get_running_loop())
    guard = RemovalGuard(getattr(args, "max_removal_fraction", 0.5), getattr(args, "removal_hold", 10.0))
    state = state_dir(args.state_dir).root  # security: mesh CAs, identities, token keys, the server's own CA
    try:
        service = Service(
            args.paths,
            zone=args.zone,
            poll_interval=args.poll_interval,
            settle=args.settle,
            guard=guard,
            state_dir=state,
            secure=not args.insecure,
            tls_hosts=args.tls_host,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    service.ads.limits = Limits(keepalive_time=args.keepalive)
    try:
        await service.start(args.address, args.port, args.debug_port)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        await service.stop()
        return 1
    announce_security(service, state)
    debug = f", debug http://{args.address}:{service.debug.port}/snapshots" if args.debug_port is not None else ""
    watching = ", ".join(args.paths)
    print(f"meshxds: ADS on {args.address}:{service.ads.port}{debug}; watching {watching}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_stop(sig: int) -> None:
        if received:
            log.warning("second %s: exiting now", signal.Signals(sig).name)
            os._exit(1)
        received.append(sig)
        stop.set()

    reloads: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        log.info("SIGHUP: reloading the input")
        task = loop.create_task(service.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop, sig)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    started = time.monotonic()
    streams = len(service.ads.streams)
    await service.stop(args.grace)
    name = signal.Signals(received[0]).name
    log.warning("%s: stopped in %.1f s (%d streams told to reconnect)", name, time.monotonic() - started, streams)
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
    setup_logging(fmt=getattr(args, "log_format", "text"))
    problem = port_in_use(args.address, args.port)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if getattr(args, "store", None) or getattr(args, "api_port", None) is not None or getattr(args, "state_dir", None):
        from meshxds.cli import serve_store  # the store/API/state mode lives in its own module

        return serve_store.run(args)
    if not args.paths:
        print("error: give resource files or folders, or --store postgres://...", file=sys.stderr)
        return 1
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    log.info("open files limit: %d", raise_fd_limit())
    return asyncio.run(serve(args))
