"""This process's row in ``processes``: registered at start-up, beaten, removed at a
clean stop; and the sweep of dead processes' calls, at start-up and after each beat.

Limits, and why:
- ``interval_s`` (``VOXLINE_PROCESS_HEARTBEAT_S``, 5 s): how often the row is beaten
  and dead processes are looked for; a dead process's calls wait about this long
  (on the same host) or the timeout plus this (elsewhere) to be finalized.
- ``timeout_s`` (``VOXLINE_PROCESS_TIMEOUT_S``, 30 s): see ``api.processes.liveness``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.calls.models import Call
from api.calls.store import SqlCallStore
from api.db.models import utcnow
from api.processes.liveness import SeenProcess, this_host, why_dead
from api.processes.models import Process
from api.processes.orphans import UNFINISHED, sweep_calls

log = logging.getLogger(__name__)


class ProcessMonitor:
    def __init__(
        self,
        sessions: async_sessionmaker,
        store: SqlCallStore,
        process_id: str,
        *,
        interval_s: float = 5.0,
        timeout_s: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self.id = process_id
        self.host = this_host()
        self.pid = os.getpid()
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register, finalize what dead processes left (a restart's predecessor), beat."""
        await self._register()
        try:
            await self.sweep()
        except Exception:
            log.exception("start-up sweep of dead processes' calls failed")
        self._task = asyncio.create_task(self._loop(), name="process-heartbeat")

    async def stop(self) -> None:
        """A clean stop (after every call here was finalized): the row goes, so nobody
        waits for its timeout."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            async with self._sessions() as db:
                await db.execute(delete(Process).where(Process.id == self.id))
                await db.commit()

    async def _register(self) -> None:
        now = utcnow()
        async with self._sessions() as db:
            await db.merge(
                Process(id=self.id, host=self.host, pid=self.pid, started_at=now, heartbeat_at=now)
            )
            await db.commit()

    async def beat(self) -> None:
        async with self._sessions() as db:
            result = await db.execute(
                update(Process).where(Process.id == self.id).values(heartbeat_at=utcnow())
            )
            await db.commit()
        if result.rowcount == 0:
            # Another process took us for dead (a stall longer than the timeout) and
            # finalized our calls; they go on here, their records stay interrupted.
            log.warning("process %s was presumed dead by another process; re-registering", self.id)
            await self._register()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat()
                await self.sweep()
            except Exception:
                log.exception("process heartbeat round failed")

    async def sweep(self) -> int:
        """Finalize the unfinished calls of every dead process; how many this one did."""
        now = utcnow()
        async with self._sessions() as db:
            rows = (await db.execute(select(Process).where(Process.id != self.id))).scalars()
            seen = [SeenProcess(r.id, r.host, r.pid, r.heartbeat_at) for r in rows]
            known = {p.id for p in seen} | {self.id}
            # Owners with no row at all: stopped (a row goes only after its calls ended)
            # or swept before one of their calls was recorded as theirs.
            owners = (
                await db.execute(
                    select(Call.owner)
                    .where(Call.owner.is_not(None), Call.status.in_(UNFINISHED))
                    .distinct()
                )
            ).scalars()
            rowless = [o for o in owners if o not in known]
        dead: list[tuple[str, str, object]] = []
        for process in seen:
            why = why_dead(process, now, timeout_s=self.timeout_s, host=self.host, own_pid=self.pid)
            if why is not None:
                dead.append((process.id, why, process.heartbeat_at))
        dead += [(owner, "stopped (no process row)", None) for owner in rowless]
        total = 0
        for owner, why, beat_seen in dead:
            n = await sweep_calls(self._sessions, self._store, owner, why)
            total += n
            if n:
                log.warning("process %s %s: %d calls finalized as interrupted", owner, why, n)
            if beat_seen is not None:
                async with self._sessions() as db:
                    # Only if it has not beaten since: a process that came back keeps its row.
                    await db.execute(
                        delete(Process).where(
                            Process.id == owner, Process.heartbeat_at == beat_seen
                        )
                    )
                    await db.commit()
        return total
