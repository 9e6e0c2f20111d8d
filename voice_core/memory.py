"""Handing the allocator's freed memory back to the system between calls.

Every call allocates and frees audio buffers, model activations (Whisper, Piper, the
end-of-turn model) and HTTP bodies from several threads. glibc gives each thread that
finds an arena locked a new arena (up to 8 per core), and memory freed inside an arena
stays mapped until the arena's top is free: over a day of calls the process's RSS
climbs with holes no call uses, though no object is left alive
(benchmarks/results/memory.*.md). Three levers, all glibc's own:

- fewer arenas (``mallopt(M_ARENA_MAX)``, what ``MALLOC_ARENA_MAX`` sets): the model
  threads share a few heaps instead of each growing its own;
- a fixed mmap threshold (``mallopt(M_MMAP_THRESHOLD)``): large blocks keep getting
  their own mappings, which go back to the system on free;
- ``malloc_trim(0)`` once calls have ended: every arena's free pages are returned with
  ``madvise``. It takes each arena's lock in turn, so it runs off the event loop, at
  most once per ``min_interval_s``, and a little after the last call ended (a call's
  post-call work frees most of its memory in the seconds after the hang-up).

On a C library that is not glibc (musl, macOS) all three are no-ops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc malloc.h
M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def limit_arenas(count: int) -> bool:
    """At most ``count`` malloc arenas from now on (0: leave glibc's default). Arenas
    already made stay; call it before the model threads start. True if it took."""
    if _LIBC is None or count <= 0:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


def fix_mmap_threshold(kib: int) -> bool:
    """Allocations of ``kib`` KiB and more get their own mapping, returned to the system
    on free (0: leave glibc's default). glibc starts at 128 KiB but raises the threshold
    each time such a block is freed, up to 32 MiB, after which the per-turn buffers
    (audio, mel spectrograms, model outputs) land in the heaps and leave holes there.
    Setting it turns that sliding off. True if it took."""
    if _LIBC is None or kib <= 0:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, kib * 1024))


def trim() -> float:
    """Return free heap pages to the system; the seconds it took (0 without glibc)."""
    if _LIBC is None:
        return 0.0
    t = time.perf_counter()
    _LIBC.malloc_trim(0)
    return time.perf_counter() - t


class HeapTrimmer:
    """Trims after calls end: ``delay_s`` after the latest end, at most once per
    ``min_interval_s``. The event loop never waits on the trim itself."""

    def __init__(self, *, delay_s: float = 2.0, min_interval_s: float = 10.0) -> None:
        self.delay_s = delay_s
        self.min_interval_s = min_interval_s
        self.trims = 0
        self._last = -float("inf")
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def call_ended(self) -> None:
        if _LIBC is None:
            return
        loop = asyncio.get_running_loop()
        if self._handle is not None:
            self._handle.cancel()
        wait = max(self.delay_s, self._last + self.min_interval_s - loop.time())
        self._handle = loop.call_later(wait, self._start)

    def _start(self) -> None:
        self._handle = None
        if self._task is not None and not self._task.done():
            return
        self._last = asyncio.get_running_loop().time()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        took = await asyncio.to_thread(trim)
        self.trims += 1
        log.debug("malloc_trim after calls ended: %.1f ms", took * 1000)

    @property
    def pending(self) -> bool:
        """A trim is scheduled or running."""
        return self._handle is not None or (self._task is not None and not self._task.done())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
