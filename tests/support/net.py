"""Loopback helpers for tests (the implementation is shared with the demo)."""

from meshxds.xds.loopback import EchoServer, echo_server, free_port, http_get

__all__ = ["EchoServer", "echo_server", "free_port", "http_get"]
