"""Call bodies: dispatch, the call log, transcripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.schemas import Strict, UtcDateTime, check_e164
from voice_core.dialing import check_dtmf_digits, check_transfer_target


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


class HangupResponse(BaseModel):
    call_id: str
    status: str = Field(description="the call's status after the hang-up was asked for")


DEFAULT_BRIEFING = "Connecting you now, one moment please."


class TransferRequest(Strict):
    to: str = Field(description="E.164 number (+15551234567) or sip: URI to hand the caller to")
    mode: Literal["cold", "warm"] = Field(
        "cold", description="warm: the agent says the briefing to the caller first"
    )
    briefing: str | None = Field(
        None, min_length=1, max_length=300, description=f"warm only; default {DEFAULT_BRIEFING!r}"
    )

    @field_validator("to")
    @classmethod
    def _to(cls, v: str) -> str:
        return check_transfer_target(v)

    @field_validator("briefing")
    @classmethod
    def _briefing_is_warm(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("mode") != "warm":
            raise ValueError("briefing is said only in a warm transfer (mode 'warm')")
        return v


class TransferResponse(BaseModel):
    call_id: str
    status: str = Field(description="the call's status after the hand-over (completed)")
    end_reason: str | None = Field(None, description="transferred:<to>")


class DtmfRequest(Strict):
    digits: str = Field(description="0-9 * # and w/W (pause), at most 64")

    @field_validator("digits")
    @classmethod
    def _digits(cls, v: str) -> str:
        return check_dtmf_digits(v)


class DtmfResponse(BaseModel):
    call_id: str
    digits: str


class StatusChange(BaseModel):
    """One entry of a call's status history: the status, and when it was entered."""

    status: str
    at: UtcDateTime


def status_changes(history: list[Any] | None) -> list[StatusChange]:
    """The store keeps ``[status, epoch seconds]`` pairs; the API shows RFC 3339 times."""
    out = []
    for entry in history or []:
        if isinstance(entry, dict):  # already {status, at}
            out.append(StatusChange.model_validate(entry))
        else:
            status, epoch = entry
            out.append(StatusChange(status=str(status), at=datetime.fromtimestamp(epoch, UTC)))
    return out


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
    created_at: UtcDateTime
    answered_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    duration_s: float | None
    call_context: dict[str, Any]


class FlowOutcome(BaseModel):
    values: dict[str, str] = Field(description="slot -> the validated value it holds")
    node: str = Field(description="the node the call was in when it ended")
    completed: bool = Field(description="the flow reached its end (booked, said goodbye)")
    path: list[str] = Field(description="the nodes visited, in order")


class CallDetail(CallOut):
    transcript: list[TranscriptLine]
    latency: list[dict[str, Any]]
    status_history: list[StatusChange]
    media_stats: dict[str, int] = Field(
        default_factory=dict,
        description="caller media frames lost / reordered / duplicated (transports that "
        "number their frames)",
    )
    flow: FlowOutcome | None = Field(
        None, description="a flow agent's outcome: the values it collected and confirmed"
    )
    summary: str | None
    sentiment: dict[str, Any] | None
    extracted: dict[str, Any] | None
    recording_url: str | None


class CallPage(BaseModel):
    data: list[CallOut]
    next_cursor: str | None
