"""Watching the input files: polling off the event loop, and reading only once a change has settled.

A change is read when the files stayed the same for ``settle`` seconds (an editor's
backup-rename-write, a ``cp -r``, a slow rewrite in place); the service reads them again when
they changed while it read them. Polling is a ``stat`` of every file, in a worker thread, so a
large tree never holds the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from meshxds.resources.loader import YAML_SUFFIXES

log = logging.getLogger("meshxds.watch")

Fingerprint = tuple[tuple[str, int, int, int], ...]
STILL_CHANGING_WARNING = 10.0  # seconds of continuous change before saying so (once)


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """What changes when any input file is written, added, removed or renamed (blocking: call off the loop).

    Only YAML files count under a folder (the loader reads nothing else): a log file written beside
    them must not keep the input from ever holding still.
    """
    out: list[tuple[str, int, int, int]] = []
    for root in paths:
        if Path(root).is_dir():
            files = sorted(f for f in Path(root).rglob("*") if f.suffix in YAML_SUFFIXES)
        else:
            files = [Path(root)]
        for f in files:
            try:
                st = f.stat()
            except OSError:
                out.append((str(f), -1, -1, -1))
                continue
            if f.is_file():
                out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class InputWatcher:
    """Says when the input changed and has stopped changing."""

    def __init__(self, paths: Sequence[str | Path], poll_interval: float = 0.2, settle: float = 0.25) -> None:
        self.paths = list(paths)
        self.poll_interval = poll_interval
        self.settle = settle

    async def fingerprint(self) -> Fingerprint:
        return await asyncio.to_thread(fingerprint, self.paths)

    async def settled(self, current: Fingerprint) -> Fingerprint:
        """Wait until the files stayed as they are for ``settle`` seconds; never reads a half-written state."""
        started = time.monotonic()
        warned = False
        while True:
            await asyncio.sleep(self.settle)
            latest = await self.fingerprint()
            if latest == current:
                return latest
            current = latest
            if not warned and time.monotonic() - started > STILL_CHANGING_WARNING:
                log.warning(
                    "input still changing after %.0f s; reading it once it stays the same", STILL_CHANGING_WARNING
                )
                warned = True
