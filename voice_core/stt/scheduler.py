"""One decode at a time, finals before partials.

The STT thread is shared by every call of the process. A partial transcript is
a nicety (the live transcript, the text end-of-turn hint); a final is on the
caller's critical path. With a plain FIFO executor, four callers talking at once
queue their partials ahead of the fifth caller's final and that caller waits
for text nobody needs. Here jobs run by priority, then arrival, and a job whose
caller stopped waiting (its asyncio future was cancelled) is skipped unrun.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

FINAL_PRIORITY = 0
PARTIAL_PRIORITY = 10


class DecodeScheduler:
    """A single worker thread fed from a priority heap."""

    def __init__(self, name: str = "stt") -> None:
        self._heap: list[tuple[int, int, Callable[[], Any], Future[Any]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T], priority: int = FINAL_PRIORITY) -> Future[T]:
        fut: Future[T] = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("decode scheduler is closed")
            heapq.heappush(self._heap, (priority, next(self._seq), fn, fut))
            self._cv.notify()
        return fut

    async def run(self, fn: Callable[[], T], priority: int = FINAL_PRIORITY) -> T:
        return await asyncio.wrap_future(self.submit(fn, priority))

    @property
    def queued(self) -> int:
        with self._cv:
            return len(self._heap)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if not self._heap:
                    return
                _, _, fn, fut = heapq.heappop(self._heap)
            if not fut.set_running_or_notify_cancel():
                continue  # nobody waits for it any more
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the awaiting caller
                fut.set_exception(exc)
