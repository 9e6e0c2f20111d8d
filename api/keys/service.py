"""Keys and the signing secret, for the API routes and the CLI alike."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey, Organization, utcnow

SECRET_PREFIX = "whsec_"


def aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:  # SQLite returns naive datetimes
        return dt.replace(tzinfo=UTC)
    return dt


def key_out(row: ApiKey) -> dict[str, object]:
    """What a listing shows: never the key, only its first characters."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scope": row.scope,
        "created_at": aware(row.created_at),
        "last_used_at": aware(row.last_used_at),
        "revoked_at": aware(row.revoked_at),
    }


async def list_keys(db: AsyncSession, org_id: str | None) -> list[ApiKey]:
    """The organization's keys (every organization's with None: the operator's CLI)."""
    q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if org_id is not None:
        q = q.where(ApiKey.org_id == org_id)
    return list((await db.execute(q)).scalars())


async def revoke_key(db: AsyncSession, org_id: str | None, key_id: str) -> ApiKey | None:
    """Revoked from now on (idempotent); None if no such key (in that organization)."""
    q = select(ApiKey).where(ApiKey.id == key_id)
    if org_id is not None:
        q = q.where(ApiKey.org_id == org_id)
    row = (await db.execute(q)).scalar_one_or_none()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_out(org: Organization) -> dict[str, object]:
    previous = org.webhook_secret.previous  # type: ignore[attr-defined]
    return {
        "secret": str(org.webhook_secret),
        "previous_valid_until": aware(org.webhook_secret_previous_until) if previous else None,
    }


async def rotate_signing_secret(db: AsyncSession, org_id: str, overlap_s: float) -> Organization:
    """A new secret signs from now on; the one it replaces signs too for ``overlap_s``.
    Rotating again during an overlap ends the older one's at once (two secrets at most)."""
    org = await db.get(Organization, org_id, with_for_update=True)
    assert org is not None  # the key that asked belongs to it
    org.webhook_secret_previous = str(org.webhook_secret) if overlap_s > 0 else None
    org.webhook_secret_previous_until = (
        utcnow() + timedelta(seconds=overlap_s) if overlap_s > 0 else None
    )
    org.webhook_secret = new_signing_secret()
    return org
