"""Poll instead of sleeping: tests wait for a condition, with a deadline and a useful failure message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 5.0, interval: float = 0.01, what: str = "") -> T:
    """Call ``check`` until it returns something truthy; return it. Exceptions count as "not yet".

    On timeout, raise AssertionError naming ``what`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # anything may fail while the system converges
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last {last!r}")
        time.sleep(interval)
