"""Writes a call's transcript and turn latency to its record while the call goes on.

Without it, what was said lives in the engine session until the call ends, and a
killed process loses all of it. The bridge calls ``mark`` when a transcript entry or
a turn's metrics appear; one background task writes the latest snapshot, and marks
that arrive while a write is in flight coalesce into one more write. The event pump
never waits for the database (audio must not stall behind a slow commit), and a
failed write is logged and retried at the next mark: the final record is written by
the bridge's finish anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from gateway.calls import CallStore

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, store: CallStore, call_id: str, snapshot: Callable[[], dict[str, Any]]):
        """``snapshot`` returns the record fields to write (``session_fields``)."""
        self._store = store
        self._call_id = call_id
        self._snapshot = snapshot
        self._dirty = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.written = 0  # snapshots written (tests, logs)

    def mark(self) -> None:
        """Something new to keep: write it soon, without waiting here."""
        if self._closed:
            return
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"checkpoint:{self._call_id}")

    async def _run(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._store.update(self._call_id, **self._snapshot())
                self.written += 1
            except Exception:
                log.warning("call %s: checkpoint not written", self._call_id, exc_info=True)
                return

    async def close(self, timeout: float = 5.0) -> None:
        """No more marks; the pending write still goes (bounded wait), so none can land
        after, and overwrite, the final record."""
        self._closed = True
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout)  # cancelled past it
