"""Operator limits that apply to every organization: concurrent calls and call duration.

``CallSlots`` admits a dispatch only while the organization's calls in flight (queued,
ringing or in progress, any channel, read from the call table) plus the dispatches this
process is still admitting stay under the cap. The per-organization lock makes the
count and the reservation one step inside a process; across processes two admissions
can still race by the width of one request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.agents.models import Agent
from api.calls.models import Call
from gateway.calls import CallStatus

IN_FLIGHT = (CallStatus.QUEUED.value, CallStatus.RINGING.value, CallStatus.IN_PROGRESS.value)
CAPACITY_RETRY_AFTER_S = 5


async def calls_in_flight(db: AsyncSession, org_id: str) -> int:
    return (
        await db.execute(
            select(func.count())
            .select_from(Call)
            .where(Call.org_id == org_id, Call.status.in_(IN_FLIGHT))
        )
    ).scalar_one()


class CallSlots:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cap: int) -> None:
        self._sessions = sessions
        self.cap = cap
        self._pending: dict[str, int] = defaultdict(int)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def admit(self, org_id: str) -> AsyncIterator[None]:
        """Held for the dispatch request: its call row exists by the time it is released."""
        async with self._locks[org_id]:
            async with self._sessions() as db:
                busy = await calls_in_flight(db, org_id)
            if busy + self._pending[org_id] >= self.cap:
                raise HTTPException(
                    429,
                    detail=f"concurrent call limit reached: {self.cap} calls in flight "
                    "for this organization",
                    headers={"Retry-After": str(CAPACITY_RETRY_AFTER_S)},
                )
            self._pending[org_id] += 1
        try:
            yield
        finally:
            self._pending[org_id] -= 1
            if self._pending[org_id] <= 0:
                self._pending.pop(org_id, None)


class OrgCallCap:
    """The transports' ``CallAdmission``: inbound calls count against the same cap as
    dispatches, read from the same call table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cap: int) -> None:
        self._sessions = sessions
        self.cap = cap

    async def refuse(self, agent_id: str | None) -> str | None:
        if agent_id is None:
            return None
        async with self._sessions() as db:
            org_id = (
                await db.execute(select(Agent.org_id).where(Agent.id == agent_id))
            ).scalar_one_or_none()
            if org_id is None:
                return None
            busy = await calls_in_flight(db, org_id)
        if busy >= self.cap:
            return f"concurrent call limit reached: {busy} of {self.cap} calls in flight"
        return None


def check_duration(spec: Any, ceiling_s: float) -> None:
    """422 naming ``end_call.max_duration_s`` when an agent asks for longer calls than
    the operator allows."""
    if not isinstance(spec, dict):
        return
    end_call = spec.get("end_call")
    value = end_call.get("max_duration_s") if isinstance(end_call, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > ceiling_s:
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "end_call", "max_duration_s"],
                    "msg": f"max_duration_s may be at most {ceiling_s:g} s "
                    "(VOXLINE_MAX_CALL_DURATION_S)",
                    "type": "less_than_equal",
                }
            ],
        )
