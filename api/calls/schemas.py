"""Call bodies: dispatch, the call log, transcripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from api.schemas import Strict, check_e164


class DispatchRequest(Strict):
    agent_id: str = Field(min_length=1, max_length=40)
    to_number: str
    from_number: str | None = None
    call_context: dict[str, Any] = Field(default_factory=dict)
    channel: Literal["phone", "whatsapp"] = Field(
        "phone",
        description='"phone": the configured carrier dials to_number; "whatsapp": a '
        "business-initiated WhatsApp call to that number (WhatsApp Business Calling)",
    )

    @field_validator("to_number")
    @classmethod
    def _to(cls, v: str) -> str:
        return check_e164(v, "to_number")

    @field_validator("from_number")
    @classmethod
    def _from(cls, v: str | None) -> str | None:
        return None if v is None else check_e164(v, "from_number")

    @field_validator("call_context")
    @classmethod
    def _context_size(cls, v: dict[str, Any]) -> dict[str, Any]:
        import json

        if len(json.dumps(v, default=str)) > 16_384:
            raise ValueError("call_context must be at most 16 KiB of JSON")
        return v


class DispatchResponse(BaseModel):
    call_id: str
    status: str


class TranscriptLine(BaseModel):
    speaker: str
    text: str
    t: float
    interrupted: bool = False


class CallOut(BaseModel):
    id: str
    agent_id: str | None
    agent_version: int | None
    bulk_call_id: int | None
    direction: str
    from_number: str
    to_number: str
    status: str
    end_reason: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    call_context: dict[str, Any]


class CallDetail(CallOut):
    transcript: list[TranscriptLine]
    latency: list[dict[str, Any]]
    status_history: list[Any]
    summary: str | None
    sentiment: dict[str, Any] | None
    extracted: dict[str, Any] | None
    recording_url: str | None


class CallPage(BaseModel):
    data: list[CallOut]
    next_cursor: str | None

