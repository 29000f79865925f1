"""A steady client: requests in a loop from a thread, every failure recorded (for "no request lost" tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Send = Callable[[], tuple[int, str]]


class SteadyClient:
    """Calls each ``send`` in turn until stopped; a non-200 or a connection error is a failure."""

    def __init__(self, *sends: Send, pause: float = 0.002) -> None:
        self.sends = sends
        self.pause = pause
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-client", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for send in self.sends:
                try:
                    status, body = send()
                except OSError as exc:
                    status, body = 0, repr(exc)
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{status} {body[:120]}")
            time.sleep(self.pause)

    def __enter__(self) -> SteadyClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
