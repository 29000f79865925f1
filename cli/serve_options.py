"""The reliability options of ``meshxds serve``, kept apart so building the parser stays light."""

from __future__ import annotations

import argparse


def add_options(p: argparse.ArgumentParser) -> None:
    """The reliability options of ``serve`` (limits, guard, shutdown, logs)."""
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format (default text)")
    p.add_argument(
        "--max-removal-fraction",
        type=float,
        default=0.5,
        help="hold a change that removes more than this fraction of the proxies (default 0.5; 1 = off)",
    )
    p.add_argument(
        "--removal-hold", type=float, default=10.0, help="seconds such a change must persist to apply (default 10)"
    )
    p.add_argument(
        "--settle", type=float, default=0.03, help="seconds without a change before the input is read (default 0.03)"
    )
    p.add_argument("--grace", type=float, default=5.0, help="seconds streams get to close on SIGTERM (default 5)")
    p.add_argument(
        "--keepalive", type=float, default=30.0, help="seconds between HTTP/2 pings to each client (default 30)"
    )
