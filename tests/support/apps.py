"""An upstream app for route and policy tests: it names itself, echoes request headers, can be slow
(``/slow?ms=N``) and fails once (``/flaky/<key>`` answers 503 the first time, 200 after)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from meshxds.demo.loopback import QuietHandler, serve_in_thread, stop_server


@dataclass
class App:
    """A threaded HTTP server on ``host`` (free port) answering ``{"name", "path", "headers"}`` as JSON."""

    name: str
    host: str = "127.0.0.1"
    port: int = 0
    hits: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> App:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                with owner._lock:
                    owner.hits.append(url.path)
                    first = url.path not in owner._seen
                    owner._seen.add(url.path)
                status = 200
                if url.path.startswith("/slow"):
                    time.sleep(int(parse_qs(url.query).get("ms", ["0"])[0]) / 1000)
                elif url.path.startswith("/flaky") and first:
                    status = 503
                headers = {k.lower(): v for k, v in self.headers.items()}
                data = json.dumps({"name": owner.name, "path": url.path, "headers": headers}).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sidecar gave up first (a timeout under test)

        self._server = serve_in_thread(self.host, self.port, Handler, f"app-{self.name}")
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None


@contextmanager
def apps(*names: str, host: str = "127.0.0.1") -> Iterator[dict[str, App]]:
    started = {name: App(name, host).start() for name in names}
    try:
        yield started
    finally:
        for app in started.values():
            app.stop()
