"""``python -m bench.soak`` (``make soak``): the reliability fault probes against a real ``meshxds serve``.

Each probe starts from a serving process on a synthetic mesh, does what an attacker or a tired operator
would (stalled readers, bad requests, an alias bomb, a slow rewrite in place, an editor save, an empty
folder, large debug requests, idle connections under ``ulimit -n 1024``, a frozen connection, SIGTERM
under load) and prints one table row: whether the server held, and the figures (RSS, loop lag, proxies
served at the worst moment). Loop lag is the slowest ``/healthz`` answer while the fault runs (the
debug server shares the event loop with the streams). Not part of ``make test``: it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench import mesh
from bench.clients import METHOD, request
from bench.mesh import MeshSpec
from meshxds.snapshots.snapshot import CLUSTER

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 60.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@dataclass
class Server:
    """``meshxds serve`` on ``folder`` in a subprocess, with its log and debug port."""

    folder: Path
    log: Path
    extra: tuple[str, ...] = ()
    fd_limit: int | None = None
    port: int = field(default_factory=free_port)
    debug: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "meshxds.cli.main",
            "serve",
            str(self.folder),
            "--port",
            str(self.port),
            "--debug-port",
            str(self.debug),
            "--poll-interval",
            "0.1",
            *self.extra,
        ]
        limit = self.fd_limit

        def preexec() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log.open("w"), preexec_fn=preexec
        )
        wait(lambda: self.ready(), 600, "serve ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def ready(self) -> bool:
        with contextlib.suppress(OSError):
            return get(self.debug, "/readyz", 2.0)[0] == 200
        return False

    def nodes(self) -> int:
        return int(json.loads(get(self.debug, "/readyz")[1])["nodes"])

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def wait(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Watch:
    """While a fault runs: the slowest /healthz answer (loop lag) and the fewest proxies served."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lag = 0.0
        self.min_nodes = 1 << 30
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                _, body = get(self.server.debug, "/readyz", 30.0)
                self.lag = max(self.lag, time.perf_counter() - start)
                self.min_nodes = min(self.min_nodes, int(json.loads(body)["nodes"]))
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Row:
    probe: str
    held: bool
    figures: str


def vips(server: Server) -> dict[str, str]:
    import yaml

    docs = yaml.safe_load_all(get(server.debug, "/meshservices")[1])
    return {d["name"]: d["status"]["vips"][0]["ip"] for d in docs if d and d.get("status", {}).get("vips")}


# --------------------------------------------------------------------------- probes


def probe_stalled_readers(server: Server, node_ids: list[str]) -> Row:
    """Streams that send requests as fast as they can and never read an answer."""
    before = server.rss_mb()

    async def run() -> int:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        sent = 0

        async def flood(node: str) -> None:
            nonlocal sent
            call = channel.stream_stream(METHOD)()
            first = True
            with contextlib.suppress(grpc.RpcError, asyncio.CancelledError):
                while True:
                    await call.write(request(CLUSTER, [], node=node if first else None, version=str(sent % 2)))
                    first = False
                    sent += 1

        tasks = [asyncio.create_task(flood(n)) for n in node_ids[:20]]
        await asyncio.sleep(30)
        for t in tasks:
            t.cancel()
        await channel.close()
        return sent

    with Watch(server) as w:
        sent = asyncio.run(run())
    after = server.rss_mb()
    held = after - before < 200
    return Row(
        "20 streams flood requests, never read (30 s)",
        held,
        f"RSS {before:.0f} -> {after:.0f} MB; {sent:,} requests sent; lag max {w.lag * 1000:.0f} ms",
    )


def probe_bad_requests(server: Server) -> Row:
    async def status_of(node: bytes) -> str:
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        call = channel.stream_stream(METHOD)()
        body = b"\x12" + _len(b"\x0a" + _len(node))
        await call.write(body + b"\x22" + _len(CLUSTER.encode()))
        with contextlib.suppress(grpc.RpcError):
            await call.read()
        code = await call.code()
        details = await call.details()
        await channel.close()
        return f"{code.name}({len(details or '')} chars)"

    results = [asyncio.run(status_of(b"x" * (3 << 20))), asyncio.run(status_of(b"default.\xff\xfe"))]
    longest = max(len(line) for line in server.log_lines())
    held = all(r.startswith("INVALID_ARGUMENT") for r in results) and longest < 3000
    return Row("3 MB node id; invalid UTF-8", held, f"{', '.join(results)}; longest log line {longest} chars")


def _len(data: bytes) -> bytes:
    n, out = len(data), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + data


def probe_alias_bomb(server: Server) -> Row:
    bomb = "type: Mesh\nname: bomb\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    bomb += "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    target = server.folder / "zz-bomb.yaml"
    nodes = server.nodes()
    with Watch(server) as w:
        target.write_text(bomb)
        wait(lambda: any("aliases expand" in line for line in server.log_lines()), 120, "the bomb refused")
        target.unlink()
        wait(lambda: json.loads(get(server.debug, "/readyz")[1])["status"] == "ready", 300, "ready again")
    held = w.min_nodes == nodes
    return Row(
        f"{len(bomb)}-byte alias bomb",
        held,
        f"refused; proxies served {w.min_nodes}/{nodes}; lag max {w.lag * 1000:.0f} ms",
    )


def probe_slow_rewrite(server: Server) -> Row:
    target = server.folder / "mesh.yaml"
    content = target.read_bytes()
    nodes, before = server.nodes(), vips(server)
    with Watch(server) as w:
        with target.open("wb") as f:  # in place, same content, over ~3 s
            step = max(1, len(content) // 30)
            for i in range(0, len(content), step):
                f.write(content[i : i + step])
                f.flush()
                time.sleep(0.1)
        time.sleep(2)
        wait(lambda: json.loads(get(server.debug, "/readyz")[1])["status"] == "ready", 300, "ready again")
    moved = sum(1 for k, v in vips(server).items() if before.get(k) != v)
    return Row(
        "slow rewrite in place (same content, 3 s)",
        w.min_nodes == nodes and not moved,
        f"proxies served {w.min_nodes}/{nodes}; VIPs moved {moved}; lag max {w.lag * 1000:.0f} ms",
    )


def probe_editor_save(server: Server) -> Row:
    target = server.folder / "mesh.yaml"
    backup = server.folder / "mesh.yaml~"
    nodes = server.nodes()
    with Watch(server) as w:
        content = target.read_bytes()
        target.rename(backup)
        time.sleep(0.1)
        target.write_bytes(content)
        backup.unlink()
        time.sleep(2)
    return Row("editor save (rename, 100 ms gap, write)", w.min_nodes == nodes, f"proxies served {w.min_nodes}/{nodes}")


def probe_empty_folder(server: Server, scratch: Path) -> Row:
    nodes = server.nodes()
    aside = scratch / "aside"
    aside.mkdir(exist_ok=True)
    with Watch(server) as w:
        for f in list(server.folder.iterdir()):
            shutil.move(f, aside / f.name)
        wait(lambda: json.loads(get(server.debug, "/readyz")[1])["status"] == "degraded", 30, "degraded")
        status = json.loads(get(server.debug, "/readyz")[1])["reasons"][0][:60]
        for f in list(aside.iterdir()):
            shutil.move(f, server.folder / f.name)
        wait(lambda: json.loads(get(server.debug, "/readyz")[1])["status"] == "ready", 300, "ready again")
    return Row(
        "input folder emptied, then restored",
        w.min_nodes == nodes,
        f"proxies served {w.min_nodes}/{nodes}; /readyz: {status}...",
    )


def probe_debug_requests(server: Server, node: str) -> Row:
    with Watch(server) as w:
        start = time.perf_counter()
        get(server.debug, "/meshservices", 300)
        ms = time.perf_counter() - start
        start = time.perf_counter()
        get(server.debug, f"/snapshots/{node}", 300)
        snap = time.perf_counter() - start
    return Row(
        "GET /meshservices and /snapshots/<node>",
        w.lag < 0.25,
        f"{ms:.1f} s and {snap:.1f} s, off the loop; lag max {w.lag * 1000:.0f} ms",
    )


def probe_idle_connections(scratch: Path, folder: Path) -> Row:
    """1,100 idle debug connections with ``ulimit -n 1024``: new streams must still connect."""
    log = scratch / "fd.log"
    with Server(folder, log, fd_limit=1024) as server:
        socks = []
        for _ in range(1100):
            try:
                socks.append(socket.create_connection(("127.0.0.1", server.debug), timeout=5))
            except OSError:
                break
        time.sleep(6)  # past the request timeout: idle ones are answered 408 and closed
        ok = get(server.debug, "/healthz", 10)[0] == 200

        async def one_stream() -> bool:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
            call = channel.stream_stream(METHOD)()
            await call.write(request(CLUSTER, [], node=first_node(folder)))
            data = await asyncio.wait_for(call.read(), 30)
            await channel.close()
            return isinstance(data, bytes)

        streamed = asyncio.run(one_stream())
        for s in socks:
            s.close()
        lines = len(server.log_lines())
    return Row(
        "1,100 idle debug connections, ulimit -n 1024",
        ok and streamed,
        f"opened {len(socks)}; /healthz {'ok' if ok else 'failed'}; "
        f"new ADS stream {'served' if streamed else 'failed'}; {lines} log lines",
    )


def probe_frozen_connection(scratch: Path, folder: Path) -> Row:
    """A connection that stops answering (a half-open TCP peer): found by keepalive pings."""
    log = scratch / "ka.log"
    with Server(folder, log, extra=("--keepalive", "5")) as server:
        proxy = FreezingProxy(server.port)
        proxy.start()
        node = first_node(folder)

        async def connect() -> None:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}")
            call = channel.stream_stream(METHOD)()
            await call.write(request(CLUSTER, [], node=node))
            await call.read()
            proxy.frozen = True
            start = time.monotonic()
            while connected(server, node):
                if time.monotonic() - start > 120:
                    break
                await asyncio.sleep(0.2)
            proxy.seconds = time.monotonic() - start
            call.cancel()
            await channel.close()

        asyncio.run(connect())
    return Row(
        "frozen connection (half-open), --keepalive 5", proxy.seconds < 60, f"stream closed after {proxy.seconds:.0f} s"
    )


def connected(server: Server, node: str) -> bool:
    nodes = json.loads(get(server.debug, "/snapshots")[1])["nodes"]
    return any(n.get("node") == node and n.get("connected") for n in nodes)


class FreezingProxy(threading.Thread):
    """Forwards TCP both ways until ``frozen``; then holds the sockets open and forwards nothing."""

    def __init__(self, target: int) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = False
        self.seconds = 0.0

    def run(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                while self.frozen:
                    time.sleep(0.1)
                dst.sendall(data)


def probe_sigterm(server: Server, node_ids: list[str]) -> Row:
    nodes_file = server.folder.parent / "nodes.txt"
    nodes_file.write_text("\n".join(node_ids) + "\n")
    cmd = [sys.executable, "-m", "bench.clients", "--port", str(server.port), "--nodes-file", str(nodes_file)]
    clients = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert clients.stdin is not None and clients.stdout is not None
    line = clients.stdout.readline()
    synced = json.loads(line)["synced"] if line.startswith("{") else 0
    assert server.proc is not None
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(60)
    seconds = time.monotonic() - start
    clients.stdin.close()
    clients.kill()
    text = server.log.read_text(errors="replace")
    tracebacks = text.count("Traceback")
    stopped = [line for line in text.splitlines() if "SIGTERM: stopped" in line]
    last = stopped[0].split(": ", 1)[-1] if stopped else "no shutdown line"
    return Row(
        f"SIGTERM with {synced} streams",
        code == 0 and not tracebacks and len(stopped) == 1,
        f"exit {code} in {seconds:.1f} s; {tracebacks} tracebacks; log: {last}",
    )


def probe_kill9(scratch: Path, folder: Path, node_ids: list[str]) -> Row:
    """kill -9 under load, then a new process on the same ports: every client back and synced."""
    log = scratch / "kill9.log"
    nodes_file = scratch / "nodes-kill9.txt"
    nodes_file.write_text("\n".join(node_ids) + "\n")
    with Server(folder, log) as first:
        cmd = [sys.executable, "-m", "bench.clients", "--port", str(first.port), "--nodes-file", str(nodes_file)]
        clients = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert clients.stdout is not None and clients.stdin is not None
        clients.stdout.readline()  # every stream synced
        assert first.proc is not None
        first.proc.kill()
        first.proc.wait()
        killed = time.monotonic()
        try:
            with Server(folder, scratch / "kill9-after.log", port=first.port, debug=first.debug) as second:
                wait(lambda: connected_count(second) >= len(node_ids), 600, "every client back")
                seconds = time.monotonic() - killed
        finally:
            clients.stdin.close()
            clients.kill()
    return Row(
        f"kill -9 with {len(node_ids)} streams, restart",
        True,
        f"all {len(node_ids)} streams back {seconds:.0f} s after the kill (restart and load included)",
    )


def connected_count(server: Server) -> int:
    return sum(1 for n in json.loads(get(server.debug, "/snapshots")[1])["nodes"] if n.get("connected"))


def first_node(folder: Path) -> str:
    return f"default.{mesh.dataplane_name(0, 0)}"


# --------------------------------------------------------------------------- main


@contextlib.contextmanager
def mesh_folder(spec: MeshSpec) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meshxds-soak-") as tmp:
        folder = Path(tmp) / "mesh"
        folder.mkdir()
        mesh.write(spec, folder)
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--services", type=int, default=300)
    p.add_argument("--dataplanes-per-service", type=int, default=3)
    p.add_argument("--streams", type=int, default=500, help="streams connected for the SIGTERM probe")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    spec = MeshSpec(
        services=args.services, dataplanes_per_service=args.dataplanes_per_service, mode="Exclusive", fanout=5
    )
    node_ids = [
        f"default.{mesh.dataplane_name(s, r)}" for s in range(spec.services) for r in range(spec.dataplanes_per_service)
    ]
    rows: list[Row] = []
    with mesh_folder(spec) as scratch:
        folder = scratch / "mesh"
        log = scratch / "serve.log"
        started = time.perf_counter()
        with Server(folder, log) as server:
            print(
                f"# {spec.proxies} proxies up in {time.perf_counter() - started:.0f} s; RSS {server.rss_mb():.0f} MB",
                file=sys.stderr,
            )
            for name, fn in [
                ("stalled", lambda: probe_stalled_readers(server, node_ids)),
                ("bad", lambda: probe_bad_requests(server)),
                ("bomb", lambda: probe_alias_bomb(server)),
                ("rewrite", lambda: probe_slow_rewrite(server)),
                ("editor", lambda: probe_editor_save(server)),
                ("empty", lambda: probe_empty_folder(server, scratch)),
                ("debug", lambda: probe_debug_requests(server, node_ids[0])),
                ("sigterm", lambda: probe_sigterm(server, node_ids[: args.streams])),
            ]:
                rows.append(run_probe(name, fn))
        rows.append(run_probe("fds", lambda: probe_idle_connections(scratch, folder)))
        rows.append(run_probe("keepalive", lambda: probe_frozen_connection(scratch, folder)))
        rows.append(run_probe("kill9", lambda: probe_kill9(scratch, folder, node_ids[: args.streams])))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        width = max(len(r.probe) for r in rows)
        print(f"{'probe':<{width}}  held  figures")
        for r in rows:
            print(f"{r.probe:<{width}}  {'yes ' if r.held else 'NO  '}  {r.figures}")
    return 0 if all(r.held for r in rows) else 1


def run_probe(name: str, fn: Callable[[], Row]) -> Row:
    print(f"# probe {name}...", file=sys.stderr, flush=True)
    try:
        return fn()
    except Exception as exc:  # a probe that breaks is a row, not a crash of the suite
        return Row(name, False, f"probe failed: {type(exc).__name__}: {str(exc)[:200]}")


if __name__ == "__main__":
    sys.exit(main())
