"""The call table: one row per call, every transport."""

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
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, utcnow


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # The call log's default listing: newest first within an organization.
        Index("ix_calls_org_created", "org_id", "created_at", "id"),
        Index("ix_calls_org_status", "org_id", "status"),
        # The orphan sweep: the calls a dead process was carrying.
        Index("ix_calls_owner_status", "owner", "status"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    agent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    agent_version: Mapped[int | None] = mapped_column(Integer)
    bulk_call_id: Mapped[int | None] = mapped_column(Integer, index=True)
    bulk_contact_id: Mapped[int | None] = mapped_column(Integer, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str] = mapped_column(String(32), default="")
    to_number: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    carrier: Mapped[str] = mapped_column(String(32), default="")
    carrier_call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    end_reason: Mapped[str | None] = mapped_column(String(200))
    transcript: Mapped[list[Any]] = mapped_column(JSON, default=list)
    turn_metrics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    recording_path: Mapped[str | None] = mapped_column(Text)
    # The process carrying the call's media (api.processes): set when its session starts.
    owner: Mapped[str | None] = mapped_column(String(80))
    # Frames lost / reordered / duplicated on the caller's media stream (the transports
    # that number their frames count them; a carrier's quirk is counted, not fatal).
    media_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    flow: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a flow agent's outcome
    summary: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extracted: Mapped[dict[str, Any] | None] = mapped_column(JSON)
