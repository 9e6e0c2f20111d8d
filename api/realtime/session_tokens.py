"""Browser-call session tokens in the database, so any process of a fleet can spend one
another process minted (behind the shipped nginx, ``POST /api/v1/sessions`` and
``POST /webrtc/offer`` land on different replicas).

The same contract as the in-process ``gateway.webrtc.tokens.SessionTokens``:
single-use, ``ttl_s`` of life, at most ``MAX_OUTSTANDING`` unspent tokens (here per
organization, so one tenant minting tokens nobody spends cannot block the others).
Only a SHA-256 of each token is stored. Spending is one conditional UPDATE (unspent
and unexpired -> spent), so two processes redeeming the same token at once give one
call, and the other gets "already used". Spent and expired rows are deleted by later
mints once they have expired: a replay within the token's life reads "already used".
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.realtime.models import SessionToken
from gateway.webrtc.tokens import MAX_OUTSTANDING, TOKEN_PREFIX, SessionGrant, TokenError


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SqlSessionTokens:
    def __init__(
        self,
        sessions: async_sessionmaker,
        ttl_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.time,
        max_outstanding: int = MAX_OUTSTANDING,
    ) -> None:
        self._sessions = sessions
        self.ttl_s = ttl_s
        self._clock = clock  # wall clock: the expiry is read by other processes
        self.max_outstanding = max_outstanding

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def mint(
        self, org_id: str, agent_id: str, context: dict[str, Any] | None = None
    ) -> SessionGrant:
        now = self._now()
        expires_at = self._clock() + self.ttl_s
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        async with self._sessions() as db:
            await db.execute(delete(SessionToken).where(SessionToken.expires_at <= now))
            outstanding = (
                await db.execute(
                    select(func.count()).where(
                        SessionToken.org_id == org_id,
                        SessionToken.spent_at.is_(None),
                        SessionToken.expires_at > now,
                    )
                )
            ).scalar_one()
            if outstanding >= self.max_outstanding:
                await db.rollback()
                raise TokenError(f"too many unused session tokens (max {self.max_outstanding})")
            db.add(
                SessionToken(
                    token_hash=_hash(token),
                    org_id=org_id,
                    agent_id=agent_id,
                    context=dict(context or {}),
                    created_at=now,
                    expires_at=datetime.fromtimestamp(expires_at, UTC),
                )
            )
            await db.commit()
        return SessionGrant(token, org_id, agent_id, expires_at, dict(context or {}))

    async def redeem(self, token: object) -> SessionGrant:
        """The grant for ``token``, which can never be redeemed again, by any process."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            raise TokenError("invalid session token")
        key, now = _hash(token), self._now()
        async with self._sessions() as db:
            spent = await db.execute(
                update(SessionToken)
                .where(
                    SessionToken.token_hash == key,
                    SessionToken.spent_at.is_(None),
                    SessionToken.expires_at > now,
                )
                .values(spent_at=now)
            )
            row = await db.get(SessionToken, key)
            await db.commit()
        if spent.rowcount != 1 or row is None:
            if row is not None and row.spent_at is not None:
                raise TokenError("session token already used")
            raise TokenError("invalid or expired session token")
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite hands back naive UTC
            expires = expires.replace(tzinfo=UTC)
        return SessionGrant(token, row.org_id, row.agent_id, expires.timestamp(), row.context)

    async def unspent(self, token: str) -> bool:
        """Whether ``token`` can still be redeemed (a broken offer must not spend it)."""
        async with self._sessions() as db:
            row = await db.get(SessionToken, _hash(token))
        if row is None or row.spent_at is not None:
            return False
        expires = row.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires > self._now()
