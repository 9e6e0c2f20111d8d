"""Freed heap goes back to the system after calls (voice_core/memory.py)."""

from __future__ import annotations

import asyncio
import gc
import platform

import pytest

from voice_core import memory

glibc = pytest.mark.skipif(
    memory._LIBC is None or platform.system() != "Linux", reason="glibc only"
)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@glibc
def test_trim_returns_the_holes_a_freed_call_left_in_the_heap() -> None:
    # Many mid-sized blocks (malloc'd, not pymalloc's), all freed but the last one,
    # which pins the heap's top: without a trim the freed pages stay in RSS.
    blocks = [bytearray(4000) for _ in range(40_000)]  # ~160 MB
    keep = blocks[-1]
    del blocks
    gc.collect()
    before = rss_mb()
    took = memory.trim()
    after = rss_mb()
    assert keep is not None
    assert took >= 0
    assert before - after > 100, (before, after)


@glibc
async def test_calls_ending_together_trim_once_a_little_later() -> None:
    trimmer = memory.HeapTrimmer(delay_s=0.05, min_interval_s=0.3)
    for _ in range(5):  # a batch of calls hangs up at once
        trimmer.call_ended()
    await asyncio.sleep(0.02)
    assert trimmer.trims == 0  # not on the hang-up itself
    await asyncio.sleep(0.2)
    assert trimmer.trims == 1 and not trimmer.pending
    trimmer.call_ended()  # another call soon after: waits out the interval
    await asyncio.sleep(0.1)
    assert trimmer.trims == 1 and trimmer.pending
    await asyncio.sleep(0.4)
    assert trimmer.trims == 2
    trimmer.close()


@glibc
def test_the_arena_limit_and_mmap_threshold_are_accepted() -> None:
    assert memory.limit_arenas(2) is True
    assert memory.limit_arenas(0) is False  # 0 leaves glibc's default
    assert memory.fix_mmap_threshold(128) is True
    assert memory.fix_mmap_threshold(0) is False
