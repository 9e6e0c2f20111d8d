"""Request and response bodies of bulk-call campaigns."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas import Strict, UtcDateTime, check_e164

CAMPAIGN_STATUSES = ("scheduled", "in_progress", "paused", "completed", "cancelled", "failed")


class CallingWindow(Strict):
    """Hours when contacts may be dialed, in the campaign's timezone."""

    start: time = Field(description="e.g. 09:00")
    end: time = Field(description="e.g. 18:00; a window past midnight (22:00-06:00) is allowed")
    days: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5, 6],
        description="weekdays, 0 = Monday",
    )

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d < 0 or d > 6 for d in v):
            raise ValueError("days must be a non-empty list of weekdays 0 (Monday) .. 6")
        return sorted(set(v))

    @model_validator(mode="after")
    def _not_empty(self) -> CallingWindow:
        if self.start == self.end:
            raise ValueError("calling_window start and end must differ")
        return self


class RetryPolicy(Strict):
    on: list[Literal["busy", "no_answer", "failed", "voicemail"]] = Field(
        default_factory=lambda: ["busy", "no_answer"],
        description="outcomes dialed again; 'voicemail': an answering machine answered "
        "(whether a message was left is the agent's voicemail setting)",
    )
    max_retries: int = Field(2, ge=0, le=10)
    delay_s: float = Field(600.0, ge=0, le=7 * 86400)


class Schedule(Strict):
    start_at: datetime | None = Field(
        None, description="when to start; a time without offset is in `timezone`; null = now"
    )
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {v!r}") from exc
        return v


class CampaignCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(min_length=1, max_length=40)
    contacts: list[dict[str, Any]] | None = Field(
        None, description="[{phone_number, ...variables}]"
    )
    contacts_csv: str | None = Field(
        None, description="CSV text with a phone column; other columns become variables"
    )
    concurrency: int = Field(3, ge=1, le=1000)
    schedule: Schedule = Field(default_factory=Schedule)
    calling_window: CallingWindow | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    from_number: str | None = None

    @field_validator("from_number")
    @classmethod
    def _from(cls, v: str | None) -> str | None:
        return None if v is None else check_e164(v, "from_number")

    @model_validator(mode="after")
    def _one_source(self) -> CampaignCreate:
        if (self.contacts is None) == (self.contacts_csv is None):
            raise ValueError("give exactly one of contacts (JSON rows) or contacts_csv")
        return self


class ContactsAdd(Strict):
    contacts: list[dict[str, Any]] | None = None
    contacts_csv: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ContactsAdd:
        if (self.contacts is None) == (self.contacts_csv is None):
            raise ValueError("give exactly one of contacts (JSON rows) or contacts_csv")
        return self


class RejectedRow(BaseModel):
    row: int
    phone_number: str | None
    reason: str


class Summary(BaseModel):
    total_contacts: int
    queued: int
    in_progress: int
    completed: int
    failed: int
    busy: int
    no_answer: int
    voicemail: int = 0


class ScheduleOut(BaseModel):
    start_at: UtcDateTime | None = Field(description="when it starts (UTC); null = at once")
    timezone: str


class CampaignOut(BaseModel):
    id: int
    name: str
    agent_id: str
    status: str
    concurrency: int
    schedule: ScheduleOut
    calling_window: CallingWindow | None
    retry: RetryPolicy
    created_at: UtcDateTime
    completed_at: UtcDateTime | None
    summary: Summary


class CampaignCreated(CampaignOut):
    accepted: int
    rejected: list[RejectedRow]


class ContactsAdded(BaseModel):
    accepted: int
    rejected: list[RejectedRow]
    summary: Summary


class ContactOut(BaseModel):
    id: int
    phone_number: str
    variables: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: UtcDateTime | None
    call_ids: list[str]
    last_outcome: str | None


class ContactPage(BaseModel):
    data: list[ContactOut]
    next_cursor: int | None


class LiveStatus(BaseModel):
    status: Literal["success"]
    bulk_call_id: int
    campaign_status: str
    summary: Summary
