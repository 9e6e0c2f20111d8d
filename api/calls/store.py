"""Database-backed implementations of the gateway's CallStore and AgentDirectory.

The gateway works with plain ``CallRecord`` objects; these classes map them onto
rows, so the phone gateway and the control plane see the same calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.agents.models import Agent
from api.calls.models import Call
from gateway.calls import CallRecord, CallStatus, Direction, UnknownCall

log = logging.getLogger(__name__)

# Runs inside the transaction that changes a call's status, so whatever it writes
# (a campaign counter, a delivery in the outbox) commits or rolls back with it.
StatusHook = Callable[[AsyncSession, Call, CallStatus, CallStatus], Awaitable[None]]
# Runs after that transaction committed (wake a worker, publish a live event).
StatusListener = Callable[[CallRecord], None]
# Runs after a new call record committed, with its organization (live events).
CreatedListener = Callable[[CallRecord, str], None]


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite hands back naive UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def to_record(row: Call) -> CallRecord:
    return CallRecord(
        id=row.id,
        agent_id=row.agent_id,
        direction=Direction(row.direction),
        from_number=row.from_number,
        to_number=row.to_number,
        status=CallStatus(row.status),
        carrier=row.carrier,
        carrier_call_id=row.carrier_call_id,
        stream_sid=row.stream_sid,
        context=dict(row.context or {}),
        created_at=_ts(row.created_at) or 0.0,
        answered_at=_ts(row.answered_at),
        ended_at=_ts(row.ended_at),
        status_history=[tuple(x) for x in row.status_history or []],
        end_reason=row.end_reason,
        transcript=list(row.transcript or []),
        turn_metrics=list(row.turn_metrics or []),
        recording_path=row.recording_path,
        owner=row.owner,
        media_stats=dict(row.media_stats or {}),
        flow=row.flow,
    )


_UNFINISHED = [s.value for s in CallStatus if not s.final]
_TIME_FIELDS = {"created_at", "answered_at", "ended_at"}
_FIELDS = {
    "agent_id",
    "from_number",
    "to_number",
    "carrier",
    "carrier_call_id",
    "stream_sid",
    "context",
    "end_reason",
    "transcript",
    "turn_metrics",
    "recording_path",
    "owner",
    "media_stats",
    "flow",
    "answered_at",
    "ended_at",
    "created_at",
    "status_history",
}


class SqlCallStore:
    def __init__(self, sessions: async_sessionmaker, default_org_id: str | None = None) -> None:
        self._sessions = sessions
        # Owner of calls no agent identifies (a stream that never sent a valid start).
        self.default_org_id = default_org_id
        self.status_hooks: list[StatusHook] = []
        self.status_listeners: list[StatusListener] = []
        self.created_listeners: list[CreatedListener] = []
        self._changed = asyncio.Condition()

    async def create(
        self, record: CallRecord, *, org_id: str | None = None, **extra: Any
    ) -> CallRecord:
        async with self._sessions() as db:
            if org_id is None:
                org_id = (
                    await db.execute(select(Agent.org_id).where(Agent.id == record.agent_id))
                ).scalar_one_or_none()
                org_id = org_id or self.default_org_id
                if org_id is None:
                    raise ValueError(
                        f"call {record.id}: agent {record.agent_id!r} has no organization"
                    )
            out = self.add(db, record, org_id=org_id, **extra)
            await db.commit()
        await self.announce_created([out], org_id)
        return out

    def add(self, db: AsyncSession, record: CallRecord, *, org_id: str, **extra: Any) -> CallRecord:
        """Add ``record``'s row to the caller's transaction, so it commits or rolls back
        with the caller's other writes (a campaign claims its contact and creates the
        call in one transaction). ``extra``: Call columns a CallRecord does not hold.
        Returns the record as stored; once the caller committed, pass it to
        ``announce_created``."""
        history = record.status_history or [(record.status.value, record.created_at)]
        row = Call(
            id=record.id,
            org_id=org_id,
            agent_id=record.agent_id,
            direction=record.direction.value,
            from_number=record.from_number,
            to_number=record.to_number,
            status=record.status.value,
            carrier=record.carrier,
            carrier_call_id=record.carrier_call_id,
            stream_sid=record.stream_sid,
            context=record.context,
            created_at=_dt(record.created_at),
            status_history=[list(h) for h in history],
            **extra,
        )
        db.add(row)
        return to_record(row)

    async def announce_created(self, records: Iterable[CallRecord], org_id: str) -> None:
        """Tell the created listeners (live monitoring) and ``wait_final`` about new
        records, after the transaction that added them committed."""
        for record in records:
            for listener in self.created_listeners:
                try:
                    listener(record, org_id)
                except Exception:
                    log.exception("created listener failed for call %s", record.id)
        await self._notify()

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._sessions() as db:
            row = await db.get(Call, call_id)
            return to_record(row) if row else None

    async def find_by_carrier_id(self, carrier_call_id: str) -> CallRecord | None:
        async with self._sessions() as db:
            row = (
                await db.execute(select(Call).where(Call.carrier_call_id == carrier_call_id))
            ).scalar_one_or_none()
            return to_record(row) if row else None

    async def update(self, call_id: str, **fields: Any) -> CallRecord:
        bad = set(fields) - _FIELDS
        if bad:
            raise AttributeError(f"CallRecord field(s) {sorted(bad)} cannot be updated")
        async with self._sessions() as db:
            row = await db.get(Call, call_id, with_for_update=db.bind.dialect.name != "sqlite")
            if row is None:
                raise UnknownCall(call_id)
            for key, value in fields.items():
                if key in _TIME_FIELDS:
                    value = _dt(value)
                elif key == "status_history":
                    value = [list(h) for h in value]
                setattr(row, key, value)
            await db.commit()
            out = to_record(row)
        await self._notify()
        return out

    async def set_status(
        self,
        call_id: str,
        status: CallStatus,
        *,
        reason: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """With ``owner`` (the orphan sweep), only while the call is still unfinished and
        that process's: a conditional UPDATE claims the row first, so of two processes
        sweeping the same dead one's calls exactly one finalizes each call."""
        async with self._sessions() as db:
            if owner is not None:
                # The transaction's first statement, so on SQLite it waits for the write
                # lock and then reads what the other sweeper committed.
                claim = await db.execute(
                    update(Call)
                    .where(Call.id == call_id, Call.owner == owner, Call.status.in_(_UNFINISHED))
                    .values(owner=owner)
                )
                if claim.rowcount != 1:
                    await db.rollback()
                    return False
            # Row lock on PostgreSQL: two processes may report the same call's status.
            row = await db.get(Call, call_id, with_for_update=db.bind.dialect.name != "sqlite")
            if row is None:
                raise UnknownCall(call_id)
            current = CallStatus(row.status)
            if current.final or current == status:
                return False
            now = datetime.now(UTC)
            row.status = status.value
            row.status_history = [*(row.status_history or []), [status.value, now.timestamp()]]
            if status == CallStatus.IN_PROGRESS and row.answered_at is None:
                row.answered_at = now
            if status.final:
                row.ended_at = now
                if reason and not row.end_reason:
                    row.end_reason = reason
            for hook in self.status_hooks:
                await hook(db, row, current, status)
            await db.commit()
            record = to_record(row)
        for listener in self.status_listeners:
            try:
                listener(record)
            except Exception:
                log.exception("status listener failed for call %s", call_id)
        await self._notify()
        return True

    async def list(self) -> list[CallRecord]:
        async with self._sessions() as db:
            rows = (await db.execute(select(Call).order_by(Call.created_at))).scalars()
            return [to_record(r) for r in rows]

    async def wait_final(self, call_id: str, timeout: float) -> CallRecord:
        async def final() -> CallRecord:
            while True:
                record = await self.get(call_id)
                if record is not None and record.status.final:
                    return record
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.5)
                    except TimeoutError:
                        pass  # another process may have written it: look again

        return await asyncio.wait_for(final(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
