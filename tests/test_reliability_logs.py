"""Logs people can read (one line per event, long values cut, repeats counted instead of printed), and a
debug port that idle clients cannot exhaust.

Before: asyncio wrote over a million traceback lines in 20 s when accept() hit the fd limit, and a
4 MB node id became one 8 MB log line.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from meshxds.control.logs import JsonFormatter, TextFormatter, short
from meshxds.control.supervise import QuietLoopErrors
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.debug import DebugServer
from tests.support.adsclient import run, until


def test_short_cuts_long_values_and_says_how_much() -> None:
    assert short("abc", 5) == "abc"
    assert short("x" * 4_000_000, 10) == "xxxxxxxxxx...(3999990 more characters)"


def test_a_repeating_loop_error_is_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        handler = QuietLoopErrors(interval=3600)
        handler.install(loop)
        with caplog.at_level(logging.ERROR, logger="meshxds.supervise"):
            for _ in range(10_000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
    finally:
        loop.close()
    assert [r.getMessage() for r in caplog.records] == [
        "socket.accept() out of system resource: OSError: [Errno 24] Too many open files"
    ]
    assert not any(r.exc_info for r in caplog.records)


def test_text_and_json_lines_have_time_and_level_and_stay_one_line() -> None:
    record = logging.LogRecord("meshxds.xds", logging.WARNING, __file__, 1, "node %s\nsecond line", ("n" * 5000,), None)
    text = TextFormatter().format(record)
    assert "\n" not in text and " WARNING meshxds.xds: node nnn" in text and len(text) < 2100
    out = io.StringIO()
    out.write(JsonFormatter().format(record))
    data = json.loads(out.getvalue())
    assert data["level"] == "WARNING" and data["time"].endswith("Z") and len(data["message"]) < 2100


def test_the_debug_server_caps_connections_and_times_out_idle_ones() -> None:
    """1,100 idle connections to the debug port used to lock out new Envoys (fds) under ulimit -n 1024."""

    async def scenario() -> None:
        server = DebugServer(SnapshotCache(), max_connections=2, request_timeout=0.3)
        port = await server.start("127.0.0.1", 0)
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await until(lambda: server.open == 2, 3.0, "two idle connections")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 503 ")  # over the cap: answered and closed
        for r, _ in idle:  # idle: answered 408 once the request timeout passes
            assert (await asyncio.wait_for(r.read(), 5.0)).startswith(b"HTTP/1.1 408 ")
        await until(lambda: server.open == 0, 3.0, "the connections to close")
        for _, w in [*idle, (reader, writer)]:
            w.close()
        await server.stop()

    run(scenario)
