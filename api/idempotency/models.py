"""The idempotency table: one row per (organization, key), in flight or answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, utcnow


class IdempotencyKey(Base):
    """A claimed key. ``status_code`` is None while the first request is in flight; then
    the stored response (status, content type, body) that a retry gets back.

    Neither the key nor the response is kept in the clear: the row holds the key's
    SHA-256 and the body sealed with a key derived from it (``api.idempotency.sealing``),
    so a copy of the database alone does not reveal, say, a created API key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # The database settles a race between two processes claiming the same key.
        UniqueConstraint("org_id", "key_hash", name="uq_idempotency_keys_org_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),  # the sweep
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64))
    # SHA-256 of method, path and the canonical body: what "the same request" means.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
