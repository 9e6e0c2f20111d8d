"""Claiming an Idempotency-Key in the database, and keeping the response it got.

A key belongs to one organization. The first request claims it (a row without a
response); the database's unique index settles two processes claiming it at once.
A successful (2xx) response is stored on the row for ``KEEP_S``; any other outcome
releases the key, so a corrected retry runs again (nothing was created). What a
retry finds:

- the stored response, when its request was the same (``Replay``);
- a different request under the same key (``Mismatch``, a 422);
- the first request still running (``InFlight``, a 409). A claim that has had no
  response for ``ABANDONED_S`` belonged to a process that died: it is taken over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db.models import utcnow
from api.idempotency import sealing
from api.idempotency.models import IdempotencyKey
from api.schemas import as_utc

KEEP_S = 24 * 3600.0  # how long a retry replays the stored response
# Longer than any creating request takes (a dispatch waits on the carrier for seconds),
# short enough that a client retrying after a crash is not refused for long.
ABANDONED_S = 300.0

Sessions = async_sessionmaker[AsyncSession]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What "the same request" means: method, path and body, with JSON compared as JSON
    (key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


@dataclass(frozen=True)
class Claimed:
    claim_id: int
    org_id: str
    key: str  # held in memory only, to seal the response


@dataclass(frozen=True)
class Replay:
    status_code: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class InFlight:
    pass


Outcome = Claimed | Replay | Mismatch | InFlight


async def claim(
    sessions: Sessions, org_id: str, key: str, request_print: str, now: datetime | None = None
) -> Outcome:
    """Claim ``key`` for a request with fingerprint ``request_print``, or say what holds it."""
    now = now or utcnow()
    for _ in range(3):  # a row expired or abandoned is removed, then claimed again
        async with sessions() as db:
            row = IdempotencyKey(
                org_id=org_id,
                key_hash=sealing.key_hash(key),
                fingerprint=request_print,
                created_at=now,
                expires_at=now + timedelta(seconds=KEEP_S),
            )
            db.add(row)
            try:
                await db.commit()
                return Claimed(row.id, org_id, key)
            except IntegrityError:
                await db.rollback()
            held = (
                await db.execute(
                    select(IdempotencyKey).where(
                        IdempotencyKey.org_id == org_id,
                        IdempotencyKey.key_hash == sealing.key_hash(key),
                    )
                )
            ).scalar_one_or_none()
            if held is None:
                continue  # released between our insert and our read
            expired = as_utc(held.expires_at) <= now
            abandoned = held.status_code is None and as_utc(held.created_at) <= now - timedelta(
                seconds=ABANDONED_S
            )
            if expired or abandoned:
                await db.execute(delete(IdempotencyKey).where(IdempotencyKey.id == held.id))
                await db.commit()
                continue
            if held.fingerprint != request_print:
                return Mismatch()
            if held.status_code is None:
                return InFlight()
            body = sealing.unseal(key, org_id, held.body) if held.body else b""
            return Replay(held.status_code, held.content_type, body)
    return InFlight()


async def complete(
    sessions: Sessions, claimed: Claimed, status_code: int, content_type: str | None, body: bytes
) -> None:
    async with sessions() as db:
        row = await db.get(IdempotencyKey, claimed.claim_id)
        if row is not None:
            row.status_code, row.content_type = status_code, content_type
            row.body = sealing.seal(claimed.key, claimed.org_id, body)
            await db.commit()


async def release(sessions: Sessions, claim_id: int) -> None:
    async with sessions() as db:
        await db.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
        await db.commit()


async def sweep(sessions: Sessions, now: datetime | None = None) -> int:
    """Delete the expired keys; how many went."""
    async with sessions() as db:
        result = await db.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or utcnow()))
        )
        await db.commit()
    return result.rowcount or 0
