"""``meshxds bootstrap --node MESH.NAME --ads HOST:PORT``: an Envoy bootstrap for one sidecar, as YAML.

With ``--token-file`` and ``--ca-cert`` (or ``--state-dir``, which supplies both) the sidecar talks TLS to
the server and presents its dataplane token, as Kuma's bootstrap does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from meshxds.security.state import state_dir
from meshxds.xds.bootstrap import bootstrap_config

DEFAULT_STATS_FLUSH = 5.0  # seconds between Envoy's counter reports to the metrics service (Envoy's own default)


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:18000``) → (host, port); ValueError with a readable reason."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ads {value!r}: expected HOST:PORT, e.g. 127.0.0.1:18000")
    return host, int(port)


def render(
    node: str,
    ads: str,
    delta: bool = False,
    admin_port: int = 9901,
    admin_address: str = "127.0.0.1",
    dns_port: int = 0,
    stats_flush_interval: float | None = DEFAULT_STATS_FLUSH,
    token: str | None = None,
    ca_pem: bytes | None = None,
) -> str:
    mesh, _, name = node.partition(".")
    if not mesh or not name:
        raise ValueError(f"--node {node!r}: expected MESH.NAME, e.g. default.web-1")
    if not 0 <= dns_port < 65536:
        raise ValueError(f"--dns-port {dns_port}: expected a port (1-65535), or 0 for no DNS listener")
    # Several replicas: --ads HOST:PORT,HOST:PORT (Envoy fails over between them).
    servers = [parse_host_port(one.strip()) for one in ads.split(",") if one.strip()]
    if not servers:
        raise ValueError(f"--ads {ads!r}: expected HOST:PORT, e.g. 127.0.0.1:18000")
    (host, port), more = servers[0], servers[1:]
    config = bootstrap_config(
        node,
        host,
        port,
        delta,
        admin_address,
        admin_port,
        dns_port,
        stats_flush_interval,
        more_ads=more,
        token=token,
        ca_pem=ca_pem,
    )
    kind = "delta (incremental)" if delta else "state-of-the-world"
    where = ", ".join(f"{h}:{p}" for h, p in servers)
    header = f"# Envoy bootstrap for Dataplane {name!r} in mesh {mesh!r}: {kind} ADS from meshxds at {where}.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def credentials(args: argparse.Namespace) -> tuple[str | None, bytes | None]:
    """(token, CA PEM) from ``--token-file``/``--ca-cert``, or both from ``--state-dir``; neither: plaintext."""
    token = Path(args.token_file).read_text().strip() if args.token_file else None
    ca_pem = Path(args.ca_cert).read_bytes() if args.ca_cert else None
    if args.state_dir:
        state = state_dir(args.state_dir)
        ca_path = state.control_plane / "ca.crt"
        if ca_pem is None:
            if not ca_path.exists():
                raise ValueError(f"{ca_path}: no control-plane CA yet; start `meshxds serve --state-dir` once first")
            ca_pem = ca_path.read_bytes()
        if token is None:
            token = state.token_for(args.node, args.valid_for)
    return token, ca_pem


def run(args: argparse.Namespace) -> int:
    try:
        token, ca_pem = credentials(args)
        flush = None if args.stats_flush_interval <= 0 else args.stats_flush_interval
        text = render(
            args.node, args.ads, args.delta, args.admin_port, args.admin_address, args.dns_port, flush, token, ca_pem
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
