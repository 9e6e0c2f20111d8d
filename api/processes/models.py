"""The process table: one row per running server process, with its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, utcnow


class Process(Base):
    __tablename__ = "processes"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    # Host name and PID namespace: processes with the same ``host`` see each other's
    # PIDs, so one can tell at once that another has exited (api.processes.liveness).
    host: Mapped[str] = mapped_column(String(160))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
