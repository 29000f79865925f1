"""The cyclic garbage collector around builds: paused while one runs, then the survivors frozen.

A build allocates millions of long-lived objects (messages, entries, snapshots, the Catalog).
With the collector on, each full collection during the build walks all of them again, and after
it every later full collection (triggered by the streams' own garbage) walks them once more.
Builds make no reference cycles the collector would need to reclaim (old builds and catalogs go
by reference counting), so the collector is paused for the build and what survives it is moved
to the permanent generation (``gc.freeze``), where collections no longer look. Every
``FULL_EVERY`` builds one full collection runs anyway, in case something frozen became cyclic garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FULL_EVERY = 16

_builds = 0


@contextmanager
def build_heap() -> Iterator[None]:
    """Pause the collector for what runs inside, then freeze what it left alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        settle()
        if was_enabled:
            gc.enable()


def settle() -> None:
    """Freeze everything alive now; every ``FULL_EVERY`` calls, collect fully first."""
    global _builds
    _builds += 1
    if _builds % FULL_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
