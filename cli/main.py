"""The ``meshxds`` command: one subcommand per user task, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any

from meshxds.cli import serve_options

COMMANDS = {
    "validate": "Check resource files; print one summary line per mesh, or every error.",
    "generate": "Print every MeshService (given and generated) with its status, as YAML.",
    "dump": "Print one proxy's snapshot as Envoy-style JSON.",
    "serve": "Run the ADS server on the resources, reloading them when they change.",
    "bootstrap": "Print an Envoy bootstrap that points a sidecar at the ADS server.",
    "demo": "Run the server, real Envoy sidecars and upstream apps on the example mesh.",
    "rules": "Print, per outbound of one proxy, the merged routes and policies and where each value came from.",
    # migration: see a change before making it (parsers in cli/migrate.py)
    "diff": "Show what every proxy would receive differently between two inputs (exit 1 if anything).",
    "migrate": "Plan a meshServices.mode switch: what appears, disappears and breaks, per proxy.",
    "explain": "Say why a proxy has a destination or not, ending in the decisive reason.",
}


STATE_HELP = "state directory for CAs, identities and token keys (default $MESHXDS_STATE_DIR or ~/.meshxds)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshxds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    zone_help = "this control plane's zone (default: default)"

    p = sub.add_parser("validate", help=COMMANDS["validate"])
    p.add_argument("paths", nargs="+", help="YAML files or folders")
    p.add_argument("--zone", default="default", help=zone_help)

    p = sub.add_parser("generate", help=COMMANDS["generate"])
    p.add_argument("paths", nargs="+", help="YAML files or folders")
    p.add_argument("--zone", default="default", help=zone_help)

    p = sub.add_parser("dump", help=COMMANDS["dump"])
    p.add_argument("paths", nargs="+", help="YAML files or folders")
    p.add_argument("--zone", default="default", help=zone_help)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--node", help="node id, <mesh>.<dataplane name>")
    target.add_argument("--all-nodes", action="store_true", help="dump every node (needs --out-dir)")
    p.add_argument("--out-dir", help="with --all-nodes: write <node>.json files here")
    p.add_argument("--dns-port", type=int, default=0, help="as if each sidecar asked for DNS on this port")

    p = sub.add_parser("serve", help=COMMANDS["serve"])
    p.add_argument("paths", nargs="*", help="YAML files or folders, watched for changes")
    p.add_argument("--zone", default="default", help=zone_help)
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=18000, help="ADS gRPC port (default 18000)")
    p.add_argument("--debug-port", type=int, help="serve /snapshots and /healthz over HTTP on this port")
    p.add_argument("--poll-interval", type=float, default=0.2, help="seconds between input checks")
    add_store_serve_options(p)
    serve_options.add_options(p)
    # Security (own block): TLS + dataplane tokens unless --insecure (keys and CAs under --state-dir or ~/.meshxds).
    p.add_argument("--insecure", action="store_true", help="plaintext ADS without tokens (local experiments only)")
    p.add_argument("--tls-host", action="append", default=[], help="extra host name/IP for the server certificate")

    p = sub.add_parser("bootstrap", help=COMMANDS["bootstrap"])
    p.add_argument("--node", required=True, help="node id, <mesh>.<dataplane name>")
    p.add_argument("--ads", default="127.0.0.1:18000", help="ADS server HOST:PORT (replicas: HOST:PORT,HOST:PORT)")
    p.add_argument("--delta", action="store_true", help="use incremental (delta) ADS")
    p.add_argument("--admin-port", type=int, default=9901, help="Envoy admin port")
    p.add_argument("--admin-address", default="127.0.0.1", help="Envoy admin address")
    p.add_argument("--dns-port", type=int, default=0, help="DNS listener port on 127.0.0.1 (0: none)")
    flush_help = "seconds between cluster counter reports to meshxds (migrate plan's live traffic); 0: off"
    p.add_argument("--stats-flush-interval", type=float, default=5.0, help=flush_help)  # cli/bootstrap.py's default
    p.add_argument("--token-file", help="dataplane token (from `meshxds token`) sent as authorization metadata")
    p.add_argument("--ca-cert", help="the control plane's CA certificate (state dir: control-plane/ca.crt)")
    p.add_argument("--state-dir", help="take the CA from here and sign a token for --node (" + STATE_HELP + ")")
    p.add_argument("--valid-for", default="24h", help="with --state-dir: the token's lifetime (default 24h)")

    add_store_commands(sub)

    p = sub.add_parser("demo", help=COMMANDS["demo"])
    p.add_argument("paths", nargs="*", default=["examples/universal-demo"], help="example mesh")
    p.add_argument("--once", action="store_true", help="one smoke run, then exit")
    p.add_argument("--delta", action="store_true", help="sidecars use incremental (delta) ADS")
    # -- rules (routes and policies)
    p = sub.add_parser("rules", help=COMMANDS["rules"])
    p.add_argument("paths", nargs="+", help="YAML files or folders")
    p.add_argument("--zone", default="default", help=zone_help)
    p.add_argument("--node", required=True, help="node id, <mesh>.<dataplane name>")

    from meshxds.cli.migrate import add_parsers

    add_parsers(sub, COMMANDS, zone_help)
    return parser


# -- the control plane you can run: store, API and kumactl-like commands (one block) ---------------
STORE_COMMANDS = {
    "apply": "Create or update resources through the API (kumactl apply).",
    "get": "List or show resources through the API (kumactl get).",
    "delete": "Delete a resource through the API (kumactl delete).",
    "inspect": "Show what the control plane gives a proxy (kumactl inspect dataplane).",
    "token": "Print the admin token that API writes need, or a dataplane token for one proxy (--node).",
}


def add_store_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="keep resources in PostgreSQL: postgres://USER@HOST:PORT/DB (replicas welcome)")
    p.add_argument("--api-port", type=int, help="serve Kuma's HTTP API and /metrics on this port")
    p.add_argument("--state-dir", help="folder mode: keep VIPs, generated MeshServices and the admin token here")


def add_store_commands(sub: Any) -> None:
    from meshxds.cli.client import add_client_options

    p = sub.add_parser("apply", help=STORE_COMMANDS["apply"])
    p.add_argument("-f", "--file", required=True, help="YAML/JSON file with one or more resources, or - for stdin")
    p.add_argument("--zone", default="default", help="this control plane's zone (default: default)")
    add_client_options(p)
    p = sub.add_parser("get", help=STORE_COMMANDS["get"])
    p.add_argument("type", help="resource type, e.g. meshservices, dataplanes, meshes")
    p.add_argument("name", nargs="?", help="one resource's name")
    p.add_argument("-m", "--mesh", default="default", help="mesh (default: default)")
    p.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    p.add_argument("--size", type=int, default=100, help="page size")
    p.add_argument("--offset", default="", help="page offset (from the previous page)")
    add_client_options(p)
    p = sub.add_parser("delete", help=STORE_COMMANDS["delete"])
    p.add_argument("type", help="resource type")
    p.add_argument("name", help="resource name")
    p.add_argument("-m", "--mesh", default="default", help="mesh (default: default)")
    add_client_options(p)
    p = sub.add_parser("inspect", help=STORE_COMMANDS["inspect"])
    p.add_argument("what", choices=("dataplane",))
    p.add_argument("name", help="Dataplane name")
    p.add_argument("-m", "--mesh", default="default", help="mesh (default: default)")
    p.add_argument("--type", choices=("config", "rules"), default="config")
    add_client_options(p)
    p = sub.add_parser("token", help=STORE_COMMANDS["token"])
    p.add_argument("--admin", action="store_true", help="the admin token (writes through the API)")
    p.add_argument("--store", help="postgres://USER@HOST:PORT/DB the server uses")
    p.add_argument("--state-dir", help="the server's --state-dir (dataplane tokens: default ~/.meshxds)")
    # Dataplane tokens (Kuma's format) for one proxy, signed with its mesh's key in the state directory.
    p.add_argument("--node", help="a dataplane token for node id <mesh>.<dataplane name>")
    p.add_argument("--valid-for", default="24h", help="with --node: lifetime, e.g. 24h, 30d (default 24h)")
    p.add_argument("--tag", action="append", default=[], help="with --node: KEY=VALUE[,VALUE...] the proxy must carry")
    p.add_argument("--revoke", metavar="JTI", help="with --node: revoke this token id in the node's mesh instead")


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"meshxds.cli.{args.command}")
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
