"""control.heap: glibc's account of its arenas, and trimming the free memory a burst leaves behind."""

from __future__ import annotations

import asyncio
import gc

import pytest

from meshxds.control import heap

glibc = pytest.mark.skipif(heap.malloc_info() is None, reason="needs glibc's mallinfo2 (Linux, glibc >= 2.33)")


def burst(total: int = 96 << 20, chunk: int = 64 << 10) -> tuple[list[bytes], bytes]:
    """Touched blocks under the mmap threshold, so they live inside malloc's arenas like gRPC's buffers,
    and one more above them that stays alive (as the heap's later objects do): freeing the blocks then
    leaves a hole glibc does not give back by itself."""
    blocks = [b"x" * chunk for _ in range(total // chunk)]
    return blocks, b"y" * chunk


@glibc
def test_mallinfo_sees_a_burst_in_use_and_then_free() -> None:
    before = heap.malloc_info()
    blocks, pin = burst()
    during = heap.malloc_info()
    del blocks
    gc.collect()
    after = heap.malloc_info()
    assert before is not None and during is not None and after is not None
    assert during.in_use - before.in_use >= 90 << 20
    assert during.in_use - after.in_use >= 90 << 20
    assert after.free >= 64 << 20  # freed, but glibc keeps it in the arena
    assert pin


@glibc
def test_trim_gives_the_freed_pages_back() -> None:
    blocks, pin = burst()
    held = heap.resident_bytes()
    blocks.clear()
    gc.collect()
    assert heap.resident_bytes() > held - (32 << 20), "glibc returned the burst without a trim"
    took = heap.malloc_trim()
    assert took > 0.0
    assert heap.resident_bytes() < held - (64 << 20)
    assert pin


@glibc
def test_trimmer_trims_once_per_burst_and_not_between_them() -> None:
    trimmer = heap.Trimmer(min_free=32 << 20, every=0.0)
    assert asyncio.run(trimmer.tick()) == 0.0  # the first look only sets the low-water mark
    blocks, pin = burst()
    del blocks
    gc.collect()
    assert asyncio.run(trimmer.tick()) > 0.0
    assert trimmer.trims == 1 and trimmer.released >= 64 << 20
    assert asyncio.run(trimmer.tick()) == 0.0  # nothing new freed since
    assert trimmer.trims == 1
    assert pin


def test_trimmer_looks_at_most_every_interval() -> None:
    trimmer = heap.Trimmer(min_free=0, every=60.0)
    assert trimmer.due(100.0) is (heap.malloc_info() is not None)
    assert not trimmer.due(130.0)
    assert trimmer.due(160.0) is (heap.malloc_info() is not None)
