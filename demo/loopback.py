"""Loopback networking for the demo (and the tests): free ports, a tiny HTTP app that names itself, plain GETs."""

from __future__ import annotations

import http.client
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (callers bind it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive and no per-request log lines: the base of the loopback apps' handlers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass


def stop_server(server: ThreadingHTTPServer | None) -> None:
    """Stop a server started by ``serve_in_thread`` (None: nothing to do) and release its socket."""
    if server is not None:
        server.shutdown()
        server.server_close()


def serve_in_thread(host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str) -> ThreadingHTTPServer:
    """Start a threaded HTTP server for ``handler`` on ``host:port`` (0: a free port) in a daemon thread."""
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


@dataclass
class EchoServer:
    """A threaded HTTP server on ``host:port`` answering every GET with ``body`` (200, text/plain).

    It records the paths it served, so tests can check which upstream a request reached.
    """

    host: str = "127.0.0.1"
    port: int = 0
    body: str = "ok"
    hits: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def start(self) -> EchoServer:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                data = owner.body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = serve_in_thread(self.host, self.port, Handler, f"echo-{self.host}:{self.port}")
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_get(host: str, port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, str]:
    """One GET on a fresh connection: (status, body). Connection errors raise OSError."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def proxied_get(
    via: tuple[str, int], destination: tuple[str, int], path: str = "/", timeout: float = 2.0
) -> tuple[int, str]:
    """GET ``path`` from ``destination`` through a PROXY-protocol listener at ``via`` (transparent proxy stand-in).

    Returns (status, body); a connection closed without an HTTP response gives (0, what was read).
    """
    header = f"PROXY TCP4 {via[0]} {destination[0]} 40000 {destination[1]}\r\n"
    request = f"GET {path} HTTP/1.1\r\nhost: {destination[0]}\r\nconnection: close\r\n\r\n"
    with socket.create_connection(via, timeout=timeout) as sock:
        sock.sendall(header.encode() + request.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks).decode(errors="replace")
    head, _, body = raw.partition("\r\n\r\n")
    parts = head.split(" ", 2)
    if not head.startswith("HTTP/") or len(parts) < 2 or not parts[1].isdigit():
        return 0, raw
    return int(parts[1]), body
