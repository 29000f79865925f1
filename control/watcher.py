"""Watching the input files: OS change notifications, polling as the fallback, and reading only once quiet.

With notifications (``watchfiles``: inotify on Linux) the watcher learns *which* file changed as it
changes, and says so once no change arrived for ``settle`` seconds (tens of milliseconds, not a
polling period): the service then re-reads only those paths (``store.folder.FileCache``). An
editor's backup-rename-write, a ``cp -r`` or a slow rewrite in place is a burst of events, so it is
read once the burst is over; a change that arrives while the service reads is read again.

Polling (a ``stat`` of every YAML file every ``poll_interval`` seconds, in a worker thread) is the
fallback where notifications are unavailable (no inotify, the watch limit reached, some network or
container mounts) and can be forced with ``MESHXDS_WATCH=poll``. With notifications the same poll
still runs every ``RECHECK`` seconds as a safety net for events the OS dropped. Either way the
changed paths come from the same place: what differs between two fingerprints, or what was notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshxds.resources.loader import YAML_SUFFIXES

log = logging.getLogger("meshxds.watch")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every batch at INFO: our reload line says it

Fingerprint = tuple[tuple[str, int, int, int], ...]
STILL_CHANGING_WARNING = 10.0  # seconds of continuous change before saying so (once)
WATCH_ENV = "MESHXDS_WATCH"  # "poll" forces polling, "notify" requires notifications; default "auto"
MODES = ("auto", "notify", "poll")
NOTIFY_STEP_MS = 5  # watchfiles hands over a batch after this much quiet; ``settle`` does the real waiting
RECHECK = 10.0  # seconds between safety-net polls when notifications are on
YIELD_EVERY = 200  # files stat'ed between two GIL releases while fingerprinting


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """What changes when any input file is written, added, removed or renamed (blocking: call off the loop).

    Only YAML files count under a folder (the loader reads nothing else): a log file written beside
    them must not keep the input from ever holding still. Plain strings and ``os`` calls, sorted as
    strings (``FileCache.fingerprint``'s order), with a GIL release every ``YIELD_EVERY`` files: a
    folder of thousands of files must not hold the server's loop for tens of milliseconds.
    """
    out: list[tuple[str, int, int, int]] = []
    done = 0
    for raw in paths:
        root = os.fspath(raw)
        if os.path.isdir(root):
            files: list[str] = []
            for top, _dirs, names in os.walk(root, followlinks=True):
                files += [os.path.join(top, n) for n in names if n.endswith(YAML_SUFFIXES)]
            files.sort()
        else:
            files = [str(Path(root))]
        for f in files:
            done += 1
            if done % YIELD_EVERY == 0:
                time.sleep(0)  # lets the event loop's thread take the GIL
            try:
                st = os.stat(f)
            except OSError:
                out.append((f, -1, -1, -1))
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((f, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def differences(old: Fingerprint, new: Fingerprint) -> frozenset[Path]:
    """The paths added, removed or changed between two fingerprints."""
    return frozenset(Path(entry[0]) for entry in set(old) ^ set(new))


@dataclass(frozen=True)
class Changes:
    """What changed since the last read: these paths, or ``None`` for "anything may have" (read everything)."""

    paths: frozenset[Path] | None
    first_at: float = 0.0  # wall clock of the first change noticed (0: none, e.g. a forced reload)
    settled_at: float = 0.0  # wall clock when the input was found quiet

    def union(self, other: Changes) -> Changes:
        paths = None if self.paths is None or other.paths is None else self.paths | other.paths
        first = min((t for t in (self.first_at, other.first_at) if t), default=0.0)
        return Changes(paths, first, other.settled_at)


def relevant(path: str) -> bool:
    """An event the loader cares about: a YAML file, or a folder (which may hold some), never a log file."""
    p = Path(path)
    if p.suffix in YAML_SUFFIXES:
        return True
    try:
        return p.is_dir() or (not p.exists() and p.suffix == "")  # a removed folder cannot be told apart
    except OSError:
        return True


def resolve_mode(mode: str | None) -> str:
    """``mode``, else ``$MESHXDS_WATCH``, else auto; an unknown value is an error naming where it came from."""
    value = mode or os.environ.get(WATCH_ENV, "") or "auto"
    if value not in MODES:
        source = "watch mode" if mode else WATCH_ENV
        raise ValueError(f"{source}={value!r}: expected one of {', '.join(MODES)}")
    return value


class InputWatcher:
    """Collects changed paths from notifications (or polling) and says when the input has been quiet."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        poll_interval: float = 0.2,
        settle: float = 0.03,
        mode: str | None = None,
        recheck: float = RECHECK,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.poll_interval = poll_interval
        self.settle = settle
        self.mode = resolve_mode(mode)
        self.recheck = recheck
        self.backend = ""  # "notify" or "poll" once started
        self.events = 0  # changes noted (notifications or poll differences)
        self._pending: set[Path] = set()
        self._everything = False
        self._first_at = 0.0
        self._last = 0.0  # monotonic time of the latest change
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._seen: Fingerprint | None = None
        self._notified: set[Path] = set()  # paths notifications reported since the last poll

    # -- what backends report ------------------------------------------------------------------
    def note(self, paths: frozenset[Path] | set[Path] | None, notified: bool = False) -> None:
        """Some paths changed (``None``: anything may have). Called by the backends on the loop."""
        if notified and paths is not None:
            self._notified |= paths
        if paths is not None and not paths:
            return
        if paths is None:
            self._everything = True
        else:
            self._pending |= paths
        if not self._first_at:
            self._first_at = time.time()
        self._last = time.monotonic()
        self.events += 1
        self._wake.set()

    @property
    def pending(self) -> bool:
        return self._everything or bool(self._pending)

    def take(self) -> Changes | None:
        """The changes noted so far (``None`` if there are none); the next ones start a new batch."""
        if not self.pending:
            return None
        out = Changes(None if self._everything else frozenset(self._pending), self._first_at, time.time())
        self._pending = set()
        self._everything = False
        self._first_at = 0.0
        self._wake.clear()
        return out

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start notifications (falling back to polling) and the poller; idempotent, restarts a dead backend."""
        self.check()
        if self._tasks:
            return
        self._stop = asyncio.Event()
        self._seen = await self.fingerprint()
        if self.mode != "poll":
            try:
                self._tasks = [asyncio.create_task(self._notify(root), name=f"notify {root}") for root in self.paths]
                await self._probe()
                self.backend = "notify"
            except Exception as exc:  # no inotify, the watch limit reached, an unsupported mount...
                await self.stop()
                if self.mode == "notify":
                    raise
                log.warning("file notifications unavailable (%s); polling every %.2f s", exc, self.poll_interval)
        if not self.backend:
            self.backend = "poll"
            self._stop = asyncio.Event()
        interval = self.recheck if self.backend == "notify" else self.poll_interval
        self._tasks.append(asyncio.create_task(self._poll(interval), name="poll input"))

    async def _probe(self) -> None:
        """Let each notifier reach its first wait, so an unavailable OS watch fails ``start``."""
        for _ in range(3):
            await asyncio.sleep(0)
        self.check()

    def check(self) -> None:
        """Raise the error a backend task died of (the supervised watch loop then restarts everything)."""
        for task in [t for t in self._tasks if t.done()]:
            self._tasks.remove(task)
            if not task.cancelled() and task.exception() is not None:
                for other in self._tasks:
                    other.cancel()
                self._tasks = []
                self.backend = ""
                exc = task.exception()
                assert exc is not None
                raise exc

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), 2.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.backend = ""

    # -- waiting -------------------------------------------------------------------------------
    async def wait(self, timeout: float) -> Changes | None:
        """The next batch of changes once the input has been quiet for ``settle`` seconds; None after ``timeout``."""
        self.check()
        if not self.pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self.check()
            if not self.pending:
                return None
        await self.settled()
        return self.take()

    async def settled(self) -> None:
        """Until no change arrived for ``settle`` seconds (polling: and a poll after that found none)."""
        started = time.monotonic()
        warned = False
        while True:
            quiet = time.monotonic() - self._last
            if quiet < self.settle:
                await asyncio.sleep(self.settle - quiet)
                continue
            last = self._last
            await self.flush()
            if self._last == last:
                return
            if not warned and time.monotonic() - started > STILL_CHANGING_WARNING:
                log.warning(
                    "input still changing after %.0f s; reading it once it stays the same", STILL_CHANGING_WARNING
                )
                warned = True

    async def flush(self) -> None:
        """Make sure what changed until now is noted: polling polls once more; notifications are already in."""
        if self.backend != "notify":
            await self.poll_once()

    # -- backends ------------------------------------------------------------------------------
    async def fingerprint(self) -> Fingerprint:
        return await asyncio.to_thread(fingerprint, self.paths)

    async def poll_once(self) -> None:
        """Note what differs from the last poll, less what notifications already reported (the safety net
        must not make a reload, or extend a quiet period, for an edit that was seen)."""
        latest = await self.fingerprint()
        if self._seen is not None and latest != self._seen:
            self.note(differences(self._seen, latest) - self._notified)
        self._seen = latest
        self._notified = set()

    async def _poll(self, interval: float) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if not self._stop.is_set():
                await self.poll_once()

    async def _notify(self, root: Path) -> None:
        """One root's notifications; a folder that is removed or replaced is watched again once it is back."""
        import watchfiles  # imported here: the polling fallback must work without it

        first = True
        while not self._stop.is_set():
            folder = root.is_dir()
            target = root if folder else root.parent
            if not target.is_dir():
                await asyncio.sleep(self.poll_interval)  # gone: the poller reports it; wait for it to come back
                continue
            if not first:
                self.note(None)  # events were lost while it was away: read everything again
            first = False
            absolute = Path(os.path.abspath(target))  # what watchfiles reports events under
            only = str(absolute / root.name)
            watch_filter = (lambda _c, p: relevant(p)) if folder else (lambda _c, p, only=only: p == only)
            async for batch in watchfiles.awatch(
                target,
                watch_filter=watch_filter,
                step=NOTIFY_STEP_MS,
                debounce=1000,
                stop_event=self._stop,
                rust_timeout=1000,
                recursive=folder,
                force_polling=False,
            ):
                reported = {Path(p) for _change, p in batch}
                if absolute in reported or not target.is_dir() or folder != root.is_dir():
                    self.note(None)
                    break  # the watched folder itself went away or was replaced: watch it anew
                self.note({as_given(p, absolute, target) for p in reported}, notified=True)


def as_given(path: Path, absolute: Path, given: Path) -> Path:
    """An event's absolute path spelled under the root as the user gave it (the loader's file names)."""
    try:
        return given / path.relative_to(absolute)
    except ValueError:
        return path
