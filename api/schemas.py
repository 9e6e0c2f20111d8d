"""Request and response bodies of the control plane (pydantic, validated at the edge)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CALL_STATUSES = (
    "queued",
    "ringing",
    "in_progress",
    "completed",
    "busy",
    "no_answer",
    "failed",
    "cancelled",
    "voicemail",
)
TRIGGER_STATUSES = ("completed", "no_answer", "busy", "failed", "cancelled", "voicemail")


def check_e164(value: str, field: str = "phone number") -> str:
    value = value.strip()
    if not E164.match(value):
        raise ValueError(f"{field} must be E.164, like +14155550123 (got {value!r})")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def as_utc(value: datetime) -> datetime:
    """RFC 3339 in UTC. The database's naive datetimes are UTC (SQLite keeps no offset)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
"""Every timestamp a response carries: with its offset, always UTC."""

# The integer id columns are INTEGER: 32-bit signed on PostgreSQL, so a larger number
# is no id anywhere (and a 64-bit one would still be a database error there).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a positive id (32-bit)")]
"""An integer id in a path: anything the id column cannot hold is a 422 naming it."""

# Ids the server makes (agt_..., call_..., pn_..., key_..., dlv_...): letters, digits,
# and _ - . : ; anything else, a NUL byte included, is no id (422, not a database error).
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
ResourceId = Annotated[str, Path(pattern=ID_PATTERN, description="an id the server gave")]
"""A string id in a path."""
OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN)]
"""A string id as an optional query filter."""


class Readiness(BaseModel):
    """GET /readyz: 200 when ready for new work, 503 (same body) when not."""

    ready: bool
    checks: dict[str, str]
