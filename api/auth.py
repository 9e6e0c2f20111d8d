"""API keys: creation, hashing, and the Bearer dependency that scopes a request to an org.

Every request looks its key up (revocation takes effect on the next request), then passes
``api.keys.guard``: the key's scope (403), its rate limit (429) and the operator limits.

Keys are 32 random bytes, so a plain SHA-256 is the right hash (a slow password hash
buys nothing against a key that cannot be guessed, and costs every request).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey, Organization
from api.keys.guard import guard_of
from api.keys.scopes import Scope

KEY_PREFIX = "vx_"
_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer vx_...`")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_organization(db: AsyncSession, name: str) -> Organization:
    org = Organization(name=name, webhook_secret="whsec_" + secrets.token_urlsafe(32))
    db.add(org)
    await db.flush()
    return org


async def create_key(
    db: AsyncSession, org_id: str, name: str = "", scope: str = Scope.ADMIN
) -> tuple[ApiKey, str]:
    """Returns the row and the key itself, which is shown once and never stored."""
    key = generate_key()
    row = ApiKey(
        org_id=org_id, name=name, prefix=key[:10], key_hash=hash_key(key), scope=Scope(scope)
    )
    db.add(row)
    await db.flush()
    return row, key


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    scope: str = Scope.ADMIN


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def get_db(request: Request):  # type: ignore[no-untyped-def]
    async with request.app.state.db_sessions() as session:
        yield session


LAST_USED_EVERY_S = 60.0  # last_used_at is advisory: one write per minute per key is plenty


async def authenticate(sessions: Any, key: str) -> Principal:
    """The live (unrevoked) key's principal, or 401."""
    digest = hash_key(key)
    async with sessions() as db:
        row = (
            await db.execute(
                select(ApiKey.id, ApiKey.org_id, ApiKey.scope, ApiKey.last_used_at).where(
                    ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                )
            )
        ).first()
        if row is None:
            raise _unauthorized("invalid or revoked API key")
        now = datetime.now(UTC)
        last = row.last_used_at
        if last is not None and last.tzinfo is None:  # SQLite returns naive datetimes
            last = last.replace(tzinfo=UTC)
        if last is None or (now - last).total_seconds() > LAST_USED_EVERY_S:
            await db.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
            await db.commit()
    return Principal(org_id=row.org_id, key_id=row.id, scope=row.scope)


async def key_is_live(sessions: Any, key_id: str) -> bool:
    """Still there and not revoked (what an open live socket re-checks)."""
    async with sessions() as db:
        found = (
            await db.execute(
                select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            )
        ).first()
    return found is not None


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Principal]:
    """A dependency with ``yield``: a dispatch holds its call slot until its row exists."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    who = await authenticate(request.app.state.db_sessions, credentials.credentials)
    async with guard_of(request.app).request(who.key_id, who.org_id, who.scope, request):
        yield who
