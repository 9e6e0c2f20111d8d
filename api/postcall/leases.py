"""Claiming due rows of a work table (analysis jobs, deliveries) for one worker.

A claimed row gets ``lease_owner`` and ``lease_expires_at``; a row whose lease ran out
(its process died mid-work) is due again. On PostgreSQL the candidates are read with
``FOR UPDATE SKIP LOCKED`` so concurrent workers split the work instead of queueing
on each other's locks; on both databases the claim itself is a conditional UPDATE
that re-checks the row is still due, so two workers never hold one row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.db.models import utcnow


async def claim_due(
    sessions: async_sessionmaker,
    model: Any,
    key: Any,
    *,
    owner: str,
    lease_s: float,
    limit: int,
    due_states: tuple[str, ...],
    working_state: str,
) -> list[Any]:
    now = utcnow()
    due = or_(
        and_(model.state.in_(due_states), model.next_attempt_at <= now),
        and_(model.state == working_state, model.lease_expires_at < now),
    )
    async with sessions() as db:
        query = select(key).where(due).order_by(model.next_attempt_at).limit(limit)
        if db.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = list((await db.execute(query)).scalars())
        claimed = []
        for row_key in candidates:
            result = await db.execute(
                update(model)
                .where(key == row_key, due)
                .values(
                    state=working_state,
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_s),
                )
            )
            if result.rowcount == 1:
                claimed.append(row_key)
        await db.commit()
    return claimed
