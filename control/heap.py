"""The cyclic garbage collector paused while a build runs.

A build allocates millions of long-lived objects (messages, entries, snapshots, the Catalog). With
the collector on, the full collections its allocations trigger walk all of them again, and the
previous build's, while the build holds the GIL. Builds make no reference cycles the collector
would need to reclaim (old builds and catalogs go by reference counting), so the collector is off
for the build; ``Service.apply`` then freezes what survives (``gc.freeze``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for what runs inside (reference counting still frees garbage)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
