"""Tables. Every tenant-owned row carries ``org_id``; queries always filter on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.postcall.signing import SigningSecret


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("org"))
    name: Mapped[str] = mapped_column(String(200))
    # Signs outbound webhooks (HMAC); per organization so one leak exposes one tenant.
    _webhook_secret: Mapped[str] = mapped_column("webhook_secret", String(80))
    # After a rotation the replaced secret signs too, until then (api.keys.service).
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(80))
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @hybrid_property
    def webhook_secret(self) -> str:
        """The current secret; during a rotation's overlap it carries the previous one
        (``SigningSecret.previous``), so every signer adds both signatures unchanged."""
        until = self.webhook_secret_previous_until
        if until is not None and until.tzinfo is None:  # SQLite returns naive datetimes
            until = until.replace(tzinfo=UTC)
        overlap = until is not None and until > utcnow()
        return SigningSecret(
            self._webhook_secret, self.webhook_secret_previous if overlap else None
        )

    @webhook_secret.inplace.setter
    def _webhook_secret_setter(self, value: str) -> None:
        self._webhook_secret = str(value)

    @webhook_secret.inplace.expression
    @classmethod
    def _webhook_secret_expression(cls) -> Any:
        return cls._webhook_secret


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    # read | calls | admin (api.keys.scopes); keys made before scopes existed are admin.
    scope: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings, never the key
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Heartbeat(Base):
    __tablename__ = "heartbeats"
    __table_args__ = (Index("ix_heartbeats_monitor_time", "monitor", "time"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)  # 0 down, 1 up, 2 pending, 3 maintenance
    msg: Mapped[str] = mapped_column(Text, default="")
    ping: Mapped[float | None] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
