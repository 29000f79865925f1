"""The process heap: the cyclic collector paused while a build runs, and the C allocator's free memory.

A build allocates millions of long-lived objects (messages, entries, snapshots, the Catalog). With
the collector on, the full collections its allocations trigger walk all of them again, and the
previous build's, while the build holds the GIL. Builds make no reference cycles the collector
would need to reclaim (old builds and catalogs go by reference counting), so the collector is off
for the build, and what survives it is frozen (``gc.freeze``) before the collector is back: frozen, the
served state is skipped by every later collection, and the next young collection does not walk the
whole build; what a later build replaces is still freed by reference counting.

Below the interpreter, glibc's malloc keeps what gRPC and large Python objects free inside its
arenas: a proxy's first sync pushes megabytes of responses through gRPC's buffers, and after the
sync that memory is free but still resident. ``malloc_trim`` hands it back to the kernel
(``bench.memory`` measures how much); on a C library without it every function here is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any


@contextmanager
def collector_paused(freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic collector for what runs inside (reference counting still frees garbage);
    ``freeze``: then freeze what is alive before the collector is back (a build and what serves it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


@cache
def _libc() -> Any:
    """glibc, or None (another C library, or not Linux): the functions below then do nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


class _Mallinfo2(ctypes.Structure):
    _FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


@dataclass(frozen=True)
class MallocInfo:
    """glibc's own account of its heap, all arenas together (``mallinfo2``), in bytes."""

    arenas: int  # obtained from the kernel for the arenas (sbrk and mmapped heaps)
    in_use: int  # handed out and not yet freed, in the arenas
    free: int  # free inside the arenas: resident unless trimmed (or never touched)
    mmapped: int  # large blocks (>= the mmap threshold) mapped one by one, all in use


def malloc_info() -> MallocInfo | None:
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return MallocInfo(info.arena, info.uordblks, info.fordblks, info.hblkhd)


def malloc_trim() -> float:
    """Return the free pages of every malloc arena to the kernel; returns the seconds it took (0.0 if
    there is no glibc). It holds each arena's lock while it walks it: call it after bursts, not per
    request."""
    libc = _libc()
    if libc is None:
        return 0.0
    started = time.perf_counter()
    libc.malloc_trim(ctypes.c_size_t(0))
    return time.perf_counter() - started


TRIM_EVERY = 10.0  # seconds between two looks of the trimmer at the heap


class Trimmer:
    """Hands malloc's free memory back to the kernel after bursts (a reload, proxies (re)connecting).

    A proxy's first sync pushes megabytes of responses through gRPC; once sent they are freed, but
    glibc keeps the pages inside its arenas, so RSS stays at the burst's peak (``python -m
    bench.memory --trim`` shows the difference). ``tick`` is cheap enough to call from a loop that runs
    every second: it looks at most every ``every`` seconds, and trims when RSS grew by ``min_free``
    since the last trim and at least that much lies free in the arenas (mallinfo cannot tell free pages
    that are resident from those already given back, RSS can). The trim runs in a worker thread: it
    takes each arena's lock while it walks it, but releases the GIL, so the event loop keeps serving.
    """

    def __init__(self, min_free: int = 32 << 20, every: float = TRIM_EVERY) -> None:
        self.min_free = min_free
        self.every = every
        self.trims = 0
        self.seconds = 0.0  # spent trimming so far (in the worker thread)
        self.released = 0  # bytes of RSS the trims so far gave back
        self._next = 0.0
        self._base: int | None = None  # RSS after the last trim (or the least seen since)

    def due(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.every
        info, rss = malloc_info(), resident_bytes()
        if info is None or not rss:
            return False
        self._base = rss if self._base is None else min(self._base, rss)
        return info.free >= self.min_free and rss - self._base >= self.min_free

    async def tick(self) -> float:
        """Trim if it is time and worth it; returns the seconds the trim took (0.0 when it did not run)."""
        if not self.due(time.monotonic()):
            return 0.0
        rss = resident_bytes()
        took = await asyncio.to_thread(malloc_trim)
        self._base = resident_bytes()
        self.trims += 1
        self.seconds += took
        self.released += max(0, rss - self._base)
        return took


_PROCESS_TRIMMER = Trimmer()  # malloc's arenas belong to the process: one trimmer for all its services


async def trim_after_bursts() -> float:
    """The process's ``Trimmer.tick``: the one call a service's periodic loop makes (``Service.watch``)."""
    return await _PROCESS_TRIMMER.tick()


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
