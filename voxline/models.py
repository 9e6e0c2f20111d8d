"""Typed results of the voxline API (pydantic). Unknown fields are kept, not
rejected, so a newer server does not break an older SDK."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Agent(Model):
    id: str
    version: int
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))


class AgentVersion(Model):
    version: int
    created_at: datetime
    spec: dict[str, Any]


class DispatchResult(Model):
    call_id: str
    status: str


class TranscriptLine(Model):
    speaker: str
    text: str
    t: float = 0.0
    interrupted: bool = False


class Call(Model):
    id: str
    agent_id: str | None = None
    agent_version: int | None = None
    bulk_call_id: int | None = None
    direction: str
    from_number: str = ""
    to_number: str = ""
    status: str
    end_reason: str | None = None
    created_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    call_context: dict[str, Any] = Field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_CALL_STATUSES


FINAL_CALL_STATUSES = frozenset(
    {"completed", "busy", "no_answer", "failed", "cancelled", "voicemail"}
)


class TurnLatency(Model):
    turn: int
    marks: dict[str, float] = Field(default_factory=dict)  # seconds after the call started
    stages_ms: dict[str, float] = Field(default_factory=dict)


class StatusChange(Model):
    """A status the call entered, and when (UTC)."""

    status: str
    at: datetime


class CallDetail(Call):
    transcript: list[TranscriptLine] = Field(default_factory=list)
    latency: list[TurnLatency] = Field(default_factory=list)
    status_history: list[StatusChange] = Field(default_factory=list)
    summary: str | None = None
    sentiment: dict[str, Any] | None = None
    extracted: dict[str, Any] | None = None
    recording_url: str | None = None


class CallPage(Model):
    data: list[Call]
    next_cursor: str | None = None


class CampaignSummary(Model):
    total_contacts: int = 0
    queued: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    busy: int = 0
    no_answer: int = 0
    voicemail: int = 0

    @property
    def finished(self) -> int:
        """Contacts with an outcome (every bucket but queued and in progress)."""
        return self.completed + self.failed + self.busy + self.no_answer + self.voicemail


class RejectedRow(Model):
    row: int
    phone_number: str | None = None
    reason: str


class Campaign(Model):
    id: int
    name: str
    agent_id: str
    status: str
    concurrency: int
    schedule: dict[str, Any] = Field(default_factory=dict)
    calling_window: dict[str, Any] | None = None
    retry: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    completed_at: datetime | None = None
    summary: CampaignSummary


class CampaignCreated(Campaign):
    accepted: int
    rejected: list[RejectedRow] = Field(default_factory=list)


class ContactsAdded(Model):
    accepted: int
    rejected: list[RejectedRow] = Field(default_factory=list)
    summary: CampaignSummary


class LiveStatus(Model):
    bulk_call_id: int
    campaign_status: str
    summary: CampaignSummary

    @property
    def done(self) -> bool:
        return self.campaign_status in ("completed", "cancelled", "failed")


class CampaignEvent(Model):
    """One Server-Sent Event of ``GET /bulk-call/{id}/events``: ``event`` is
    ``summary`` or ``status``; ``data`` its JSON."""

    event: str
    data: dict[str, Any]
    id: str | None = None


class Delivery(Model):
    id: str
    call_id: str
    agent_id: str | None = None
    channel: str
    action_index: int = 0
    event: str = ""
    state: str
    attempts: int = 0
    max_attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    attempt_log: list[dict[str, Any]] = Field(default_factory=list)


class WebhookTestResult(Model):
    ok: bool
    status_code: int | None = None
    latency_ms: float = 0.0
    response_excerpt: str | None = None
    error: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
