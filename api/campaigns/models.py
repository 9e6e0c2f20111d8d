"""Campaign tables. The per-bucket counters are maintained in the same transactions
that move contacts between buckets, so live status is one primary-key read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, utcnow


class Campaign(Base):
    """A campaign. The per-bucket counters are maintained in the same transactions
    that move contacts between buckets, so live status is one primary-key read."""

    __tablename__ = "bulk_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    window: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {start, end, days}
    retry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {on, max_retries, delay_s}
    from_number: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total_contacts: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    in_progress: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    busy: Mapped[int] = mapped_column(Integer, default=0)
    no_answer: Mapped[int] = mapped_column(Integer, default=0)
    voicemail: Mapped[int] = mapped_column(Integer, default=0)  # a machine answered


class CampaignContact(Base):
    __tablename__ = "bulk_contacts"
    __table_args__ = (
        UniqueConstraint("bulk_call_id", "phone_number"),
        # The dispatcher's question: which contacts of this campaign are due now?
        Index("ix_bulk_contacts_due", "bulk_call_id", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bulk_call_id: Mapped[int] = mapped_column(ForeignKey("bulk_calls.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(String(32))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # queued | dialing | in_progress | completed | failed | busy | no_answer | voicemail
    # | cancelled
    state: Mapped[str] = mapped_column(String(16), default="queued")
    bucket: Mapped[str] = mapped_column(String(16), default="queued")  # the counter it is in
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    call_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
