"""Calls of a dead process are finalized (failed, interrupted) exactly once, even with
two live processes sweeping at the same moment; a live process's calls are left alone.
Each "process" here is its own engine and call store on one shared database, as two
servers are; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from api.auth import create_organization
from api.calls.models import Call
from api.calls.store import SqlCallStore
from api.db.engine import create_engine, migrate, session_factory
from api.processes.liveness import SeenProcess, this_host, why_dead
from api.processes.models import Process
from api.processes.monitor import ProcessMonitor
from gateway.calls import CallRecord, CallStatus, Direction
from tests.api.conftest import _pg_create_database, _pg_drop_database

DEAD, ALIVE = "host-b-4242-dead", "host-c-4343-alive"
ELSEWHERE = "another-host/1"
SAID = {
    "speaker": "caller",
    "text": "hi",
    "t": 1.0,
}  # not this host: only the heartbeat's age can tell


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voxline.db'}"
        return
    pg = await _pg_create_database()
    if pg is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL cases skipped")
    yield pg
    await _pg_drop_database(pg)


@dataclass
class Node:
    """One server process as far as the sweep goes: its engine, store and monitor."""

    engine: Any
    store: SqlCallStore
    monitor: ProcessMonitor
    finalized: list[tuple[str, str]]  # (call id, status) the store's hook saw


def node(url: str, process_id: str) -> Node:
    engine = create_engine(url)
    sessions = session_factory(engine)
    store = SqlCallStore(sessions)
    finalized: list[tuple[str, str]] = []

    async def hook(db, call, old, new) -> None:  # type: ignore[no-untyped-def]
        if new.final:
            finalized.append((call.id, new.value))

    store.status_hooks.append(hook)
    return Node(engine, store, ProcessMonitor(sessions, store, process_id, timeout_s=30), finalized)


async def seed(url: str, calls_per_owner: int) -> None:
    """A dead process (no beat for a minute, on another host) and a live one, each with
    calls in progress, plus a finished call of the dead one."""
    await migrate(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as db:
        org = await create_organization(db, "org")
        db.add(Process(id=DEAD, host=ELSEWHERE, pid=4242, heartbeat_at=now - timedelta(minutes=1)))
        db.add(Process(id=ALIVE, host=ELSEWHERE, pid=4343, heartbeat_at=now))
        await db.commit()
        org_id = org.id
    store = SqlCallStore(sessions)
    for owner, tag in ((DEAD, "dead"), (ALIVE, "live")):
        for i in range(calls_per_owner):
            call_id = f"call_{tag}_{i}"
            record = CallRecord(id=call_id, agent_id=None, direction=Direction.INBOUND)
            await store.create(record, org_id=org_id)
            await store.update(call_id, owner=owner, transcript=[SAID])
            await store.set_status(call_id, CallStatus.IN_PROGRESS)
    done = await store.create(
        CallRecord(id="call_dead_done", agent_id=None, direction=Direction.INBOUND), org_id=org_id
    )
    await store.update(done.id, owner=DEAD)
    await store.set_status(done.id, CallStatus.COMPLETED, reason="caller_hangup")
    await engine.dispose()


async def test_two_sweepers_finalize_each_dead_call_exactly_once(url) -> None:
    await seed(url, calls_per_owner=8)
    a, b = node(url, "host-a-1-sweeper"), node(url, "host-d-2-sweeper")
    try:
        done_a, done_b = await asyncio.gather(a.monitor.sweep(), b.monitor.sweep())
        assert done_a + done_b == 8
        seen = Counter(call_id for call_id, _ in a.finalized + b.finalized)
        assert set(seen.values()) == {1} and len(seen) == 8, seen  # one final status each
        async with session_factory(a.engine)() as db:
            rows = {c.id: c for c in (await db.execute(select(Call))).scalars()}
            processes = set((await db.execute(select(Process.id))).scalars())
        for call_id, call in rows.items():
            if "dead" in call_id and call_id != "call_dead_done":
                assert call.status == "failed", call_id
                assert call.end_reason.startswith(f"interrupted: process {DEAD} stopped")
                assert [h[0] for h in call.status_history].count("failed") == 1
                assert call.transcript == [SAID]  # what was said so far stays
            elif call_id == "call_dead_done":
                assert (call.status, call.end_reason) == ("completed", "caller_hangup")
            else:  # the live process's calls go on
                assert call.status == "in_progress" and call.end_reason is None, call_id
        assert processes == {ALIVE}  # the dead one's row is gone with its calls
        # Sweeping again finds nothing: finalized is final.
        assert await a.monitor.sweep() == 0 and await b.monitor.sweep() == 0
    finally:
        await a.engine.dispose()
        await b.engine.dispose()


def test_a_process_is_dead_when_its_beat_is_old_or_its_pid_is_gone_on_this_host() -> None:
    now = datetime.now(UTC)
    host = this_host()

    def seen(beat_age_s: float, on: str, pid: int = 10) -> SeenProcess:
        return SeenProcess("p", on, pid, now - timedelta(seconds=beat_age_s))

    def dead(p: SeenProcess, alive: bool = True) -> str | None:
        return why_dead(p, now, timeout_s=30, host=host, own_pid=os.getpid(), alive=lambda _: alive)

    assert dead(seen(5, ELSEWHERE)) is None
    assert dead(seen(31, ELSEWHERE)) == "stopped (no heartbeat for 31 s)"
    # Elsewhere a pid says nothing; here a vanished one means dead at once.
    assert dead(seen(1, ELSEWHERE), alive=False) is None
    assert dead(seen(1, host), alive=False) == "stopped (pid 10 exited)"
    assert dead(seen(1, host), alive=True) is None
    assert dead(seen(1, host, pid=os.getpid()), alive=False) is None  # ourselves
    # And with the real check: this test's own pid is alive, a reaped child's is not.
    assert (
        why_dead(seen(1, host, pid=os.getpid() + 0), now, timeout_s=30, host=host, own_pid=-1)
        is None
    )


async def test_a_calls_owner_without_a_process_row_counts_as_dead(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'voxline.db'}"
    await seed(url, calls_per_owner=1)
    a = node(url, "host-a-1-sweeper")
    try:
        async with session_factory(a.engine)() as db:
            await db.execute(Process.__table__.delete())
            await db.commit()
        # ALIVE has no row now either: a row goes only after its process's calls ended,
        # so a call whose owner has none was left behind.
        assert await a.monitor.sweep() == 2
        record = await a.store.get("call_dead_0")
        assert record is not None and record.end_reason == (
            f"interrupted: process {DEAD} stopped (no process row)"
        )
    finally:
        await a.engine.dispose()
