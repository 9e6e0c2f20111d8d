"""Browser-call session tokens, in the database: minted by one process, spent on any."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, utcnow


class SessionToken(Base):
    __tablename__ = "webrtc_session_tokens"
    __table_args__ = (
        # The per-organization cap on outstanding tokens, and the sweep of expired ones.
        Index("ix_webrtc_session_tokens_org_expires", "org_id", "expires_at"),
        Index("ix_webrtc_session_tokens_expires", "expires_at"),
    )
    # SHA-256 of the token: a read of the table (a backup, a log) holds no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(40))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set by the one redeem that wins; kept until expiry, so a replay reads "already used".
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
