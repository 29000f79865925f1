"""Background tasks that cannot die silently: restarted with backoff, their state visible in /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("meshxds.supervise")


class Supervised:
    """Runs ``factory()`` forever: an exception is logged (one line), the task waits and starts again."""

    def __init__(
        self, name: str, factory: Callable[[], Awaitable[None]], backoff: float = 0.5, max_backoff: float = 30.0
    ) -> None:
        self.name = name
        self.factory = factory
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.failures = 0
        self.last_error: str | None = None
        self.running = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.running = True
        self._task = asyncio.create_task(self._run(), name=self.name)

    @property
    def healthy(self) -> bool:
        return self.running and self._task is not None and not self._task.done()

    def state(self) -> dict[str, object]:
        out: dict[str, object] = {"running": self.healthy, "restarts": self.failures}
        if self.last_error:
            out["last_error"] = self.last_error
        return out

    async def _run(self) -> None:
        delay = self.backoff
        while True:
            self.running = True
            try:
                await self.factory()
                log.warning("%s stopped; starting it again", self.name)
            except asyncio.CancelledError:
                self.running = False
                raise
            except Exception as exc:  # any failure: report it, then restart
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.error("%s failed (%s); restarting in %.1f s", self.name, self.last_error, delay)
            self.running = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class QuietLoopErrors:
    """The loop's exception handler, rate-limited: an error that repeats (accept() failing with EMFILE
    on every attempt) is logged once per ``interval`` with a count, as one line without a traceback."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "event loop error")
        key = f"{message}|{type(exc).__name__}"
        now = loop.time()
        if now - self._last.get(key, -self.interval) < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        again = self._suppressed.pop(key, 0)
        repeated = f" (and {again} more in the last {self.interval:g} s)" if again else ""
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        log.error("%s%s%s", message, detail[:300], repeated)
