"""control.heap: glibc's account of its arenas, and trimming the free memory a burst leaves behind."""

from __future__ import annotations

import asyncio
import gc

import pytest

from meshxds.control import heap

glibc = pytest.mark.skipif(heap.malloc_info() is None, reason="needs glibc's mallinfo2 (Linux, glibc >= 2.33)")


def burst(total: int = 96 << 20, chunk: int = 64 << 10) -> tuple[list[bytes], list[bytes]]:
    """Touched blocks under the mmap threshold, so they live inside malloc's arenas like gRPC's buffers;
    every 16th stays alive (as the heap's longer-lived objects do), so freeing the rest leaves holes
    glibc does not give back by itself, wherever in a used heap the blocks landed."""
    blocks = [b"x" * chunk for _ in range(total // chunk)]
    return [b for i, b in enumerate(blocks) if i % 16], blocks[::16]


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
    assert during.in_use - after.in_use >= 80 << 20
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


def test_the_process_trimmer_is_one_call_a_loop_can_make() -> None:
    assert asyncio.run(heap.trim_after_bursts()) >= 0.0
    assert asyncio.run(heap.trim_after_bursts()) == 0.0  # looked just now: not again within its interval


def test_a_paused_collector_freezes_what_survives_before_it_is_back() -> None:
    gc.unfreeze()
    try:
        with heap.collector_paused(freeze=True):
            assert not gc.isenabled()
            kept = [[n] for n in range(1000)]  # tracked containers a build leaves alive
            assert gc.get_freeze_count() == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
        with heap.collector_paused():
            pass
        assert gc.isenabled()
    finally:
        gc.unfreeze()
