"""Loopback helpers for tests (the implementation is shared with the demo)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshxds.demo.loopback import EchoServer, free_port, http_get

__all__ = ["EchoServer", "echo_server", "free_port", "http_get"]


@contextmanager
def echo_server(host: str = "127.0.0.1", body: str = "ok", port: int = 0) -> Iterator[EchoServer]:
    """An ``EchoServer`` answering ``body`` for the duration of a ``with`` block."""
    with EchoServer(host=host, port=port, body=body) as server:
        yield server
