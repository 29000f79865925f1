"""Full build, one-endpoint rebuild, encode speed, and where the build time goes.

Full build = ``snapshots.builder.snapshots_for(catalog)``: translation, message construction,
encoding, hashing and the per-proxy snapshot assembly and checks. Loading the YAML into a Catalog
is timed separately (it is the input side, not the build).
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshxds.codec.encode import encode_message
from meshxds.control.heap import collector_paused
from meshxds.security.issuer import IdentityIssuer
from meshxds.snapshots.builder import Builder, snapshots_for
from meshxds.snapshots.snapshot import SHORT_NAMES, TYPE_ORDER, Snapshot


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def build(catalog: Any, builder: Builder | None = None, served: bool = False) -> tuple[dict[str, Snapshot], float]:
    """A fresh build, or with ``builder`` (as ``meshxds serve`` holds one) only what changed since its last.

    ``served``: as the service runs it, the collector paused and what the build leaves alive frozen
    (``control.heap``); otherwise with the collector on.
    """
    gc.collect()
    if not served:
        return timed(lambda: (builder or Builder()).build(catalog))
    with collector_paused(freeze=True):  # as the service runs builds
        out = timed(lambda: (builder or Builder()).build(catalog))
    return out


def build_without_gc(catalog: Any, issuer: IdentityIssuer | None = None) -> float:
    """The same build with the collector frozen and off, as a bulk build could run (issue #5 notes GC effects)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return timed(lambda: snapshots_for(catalog, issuer))[1]
    finally:
        gc.enable()
        gc.unfreeze()


def changed_nodes(before: Mapping[str, Snapshot], after: Mapping[str, Snapshot]) -> int:
    return sum(1 for n in after if n not in before or dict(before[n].versions) != dict(after[n].versions))


def distinct_messages(snapshots: Mapping[str, Snapshot]) -> dict[str, list[Any]]:
    """Every distinct message object the snapshots hold, per type (shared entries counted once)."""
    seen: set[int] = set()
    out: dict[str, list[Any]] = {t: [] for t in TYPE_ORDER}
    for snap in snapshots.values():
        for type_url in TYPE_ORDER:
            for entry in snap.get(type_url).values():
                if id(entry) not in seen:
                    seen.add(id(entry))
                    out[type_url].append(entry.message)
    return out


@dataclass(frozen=True)
class EncodeRow:
    kind: str
    distinct: int  # distinct resources of this type in the build
    sample: int
    ours_us: float
    bytes_us: float

    @property
    def speedup(self) -> float:
        return self.bytes_us / self.ours_us if self.ours_us else float("nan")


REPEAT = 20  # trials of our encoder (fast: many are cheap)
TRIALS = 3  # trials of bytes() (~1 ms a resource)


def encode_speed(messages: Mapping[str, list[Any]], sample: int = 20, seed: int = 5) -> list[EncodeRow]:
    """µs per resource, ours vs betterproto2's bytes(), on the same randomly sampled resources.

    The heap is frozen first: otherwise collections triggered by the timed loops traverse the whole
    build (millions of objects) and the figure measures the collector, not the encoder.
    """
    rng = random.Random(seed)
    rows = []
    gc.collect()
    gc.freeze()
    for type_url, msgs in messages.items():
        if not msgs:
            continue
        picked = rng.sample(msgs, min(sample, len(msgs)))
        # Best of several trials, both sides (timeit's rule): other load on the machine only adds time.
        ours = min(timed(lambda p=picked: [encode_message(m) for m in p])[1] for _ in range(REPEAT))  # type: ignore[misc]
        theirs = min(timed(lambda p=picked: [bytes(m) for m in p])[1] for _ in range(TRIALS))  # type: ignore[misc]
        n = len(picked)
        rows.append(EncodeRow(SHORT_NAMES[type_url], len(msgs), n, ours / n * 1e6, theirs / n * 1e6))
    gc.unfreeze()
    return rows


def overall_speedup(rows: list[EncodeRow]) -> float:
    """bytes() time / our time over the whole build's distinct resources (weighted by count)."""
    ours = sum(r.ours_us * r.distinct for r in rows)
    theirs = sum(r.bytes_us * r.distinct for r in rows)
    return theirs / ours if ours else float("nan")


# --------------------------------------------------------------------------- profile

CATEGORIES = (
    ("encoding", ("codec/encode.py", "<encoder ")),
    ("hashing", ("blake2", "hashlib", "hexdigest")),
    (
        "message construction (constructors, pydantic)",
        ("<constructor ", "codec/construct.py", "pydantic", "betterproto2", "envoy_data_plane", "validate_python"),
    ),
    ("translation", ("translators/", "ipaddress", "resources/")),
    ("snapshot assembly + checks", ("snapshots/builder.py", "snapshots/snapshot.py")),
)


def categorise(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for name, needles in CATEGORIES:
        if any(n in where for n in needles):
            return name
    return "other (builtins, dict/list ops)"


@dataclass(frozen=True)
class Profile:
    total_s: float
    by_category: dict[str, float]
    top: list[tuple[str, float, float]]  # (function, tottime, cumtime)


def profile(fn: Callable[[], Any], top: int = 15) -> Profile:
    """cProfile ``fn`` and add up self-time per category (times are inflated by the profiler itself).

    The collector is paused as for a served build: a collection of the whole heap would otherwise be
    charged to whichever function happened to allocate (often a message constructor).
    """
    gc.collect()
    prof = cProfile.Profile()
    with collector_paused():
        prof.enable()
        fn()
        prof.disable()
    stats = pstats.Stats(prof)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    by: dict[str, float] = {}
    rows = []
    for (filename, line, function), (_, _, tottime, cumtime, _) in raw.items():
        cat = categorise(filename, function)
        by[cat] = by.get(cat, 0.0) + tottime
        rows.append((f"{_short(filename)}:{line}({function})", tottime, cumtime))
    rows.sort(key=lambda r: -r[1])
    return Profile(sum(by.values()), dict(sorted(by.items(), key=lambda kv: -kv[1])), rows[:top])


def _short(filename: str) -> str:
    """A profiled file's path relative to the checkout, so tables don't show this machine's paths."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    return filename[len(root) :] if filename.startswith(root) else filename
