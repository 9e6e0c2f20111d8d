"""Request and response bodies of the control plane (pydantic, validated at the edge)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

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
)
TRIGGER_STATUSES = ("completed", "no_answer", "busy", "failed", "cancelled", "voicemail")


def check_e164(value: str, field: str = "phone number") -> str:
    value = value.strip()
    if not E164.match(value):
        raise ValueError(f"{field} must be E.164, like +14155550123 (got {value!r})")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
