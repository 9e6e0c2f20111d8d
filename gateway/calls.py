"""Call records and where they are kept.

``CallStore`` is the interface the phone gateway needs; ``InMemoryCallStore``
serves until the control plane brings a database (a SQLAlchemy store
implements the same async methods). Methods are async for that reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol


class CallStatus(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VOICEMAIL = "voicemail"  # an answering machine answered (outbound screening)

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = {
    CallStatus.COMPLETED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.CANCELLED,
    CallStatus.VOICEMAIL,
}

# Twilio's CallStatus values (status callbacks, REST answers) -> ours.
TWILIO_STATUS = {
    "queued": CallStatus.QUEUED,
    "initiated": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS,
    "answered": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELLED,
}


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:16]


@dataclass
class CallRecord:
    id: str
    agent_id: str | None
    direction: Direction
    from_number: str = ""
    to_number: str = ""
    status: CallStatus = CallStatus.QUEUED
    carrier: str = ""
    carrier_call_id: str | None = None
    stream_sid: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    status_history: list[tuple[str, float]] = field(default_factory=list)
    end_reason: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    turn_metrics: list[dict[str, Any]] = field(default_factory=list)
    recording_path: str | None = None
    # What the media line lost, reordered and repeated (frames_lost, frames_reordered,
    # frames_duplicated), from transports whose protocol numbers its messages.
    media_stats: dict[str, int] = field(default_factory=dict)
    # A flow agent's outcome: the validated values it collected, where it ended, its path.
    flow: dict[str, Any] | None = None
    # The process carrying the call's media (``CallRegistry.process_id``): if it dies,
    # another process finalizes the call (api.processes).
    owner: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return round(self.ended_at - self.answered_at, 3)


class CallStore(Protocol):
    async def create(self, record: CallRecord) -> CallRecord: ...

    async def get(self, call_id: str) -> CallRecord | None:
        """A snapshot; change it through ``update`` / ``set_status``."""
        ...

    async def find_by_carrier_id(self, carrier_call_id: str) -> CallRecord | None: ...

    async def update(self, call_id: str, **fields: Any) -> CallRecord: ...

    async def set_status(
        self, call_id: str, status: CallStatus, *, reason: str | None = None
    ) -> bool:
        """Move a call to ``status``. A final status is kept: callbacks arrive out of
        order (a late 'ringing' after 'completed'), so returns False if ignored."""
        ...

    async def list(self) -> list[CallRecord]: ...


class UnknownCall(KeyError):
    pass


class InMemoryCallStore:
    def __init__(self) -> None:
        self._calls: dict[str, CallRecord] = {}
        self._changed = asyncio.Condition()

    async def create(self, record: CallRecord) -> CallRecord:
        if record.id in self._calls:
            raise ValueError(f"call {record.id!r} already exists")
        if not record.status_history:
            record.status_history.append((record.status.value, time.time()))
        self._calls[record.id] = record
        await self._notify()
        return replace(record)

    async def get(self, call_id: str) -> CallRecord | None:
        record = self._calls.get(call_id)
        return replace(record) if record else None

    async def find_by_carrier_id(self, carrier_call_id: str) -> CallRecord | None:
        for record in self._calls.values():
            if record.carrier_call_id == carrier_call_id:
                return replace(record)
        return None

    async def update(self, call_id: str, **fields: Any) -> CallRecord:
        record = self._calls.get(call_id)
        if record is None:
            raise UnknownCall(call_id)
        for key, value in fields.items():
            if not hasattr(record, key) or key in ("id", "status"):
                raise AttributeError(f"CallRecord field {key!r} cannot be updated")
            setattr(record, key, value)
        await self._notify()
        return replace(record)

    async def set_status(
        self, call_id: str, status: CallStatus, *, reason: str | None = None
    ) -> bool:
        record = self._calls.get(call_id)
        if record is None:
            raise UnknownCall(call_id)
        if record.status.final or record.status == status:
            return False
        now = time.time()
        record.status = status
        record.status_history.append((status.value, now))
        if status == CallStatus.IN_PROGRESS and record.answered_at is None:
            record.answered_at = now
        if status.final:
            record.ended_at = now
            if reason and not record.end_reason:
                record.end_reason = reason
        await self._notify()
        return True

    async def list(self) -> list[CallRecord]:
        return [replace(r) for r in self._calls.values()]

    async def wait_final(self, call_id: str, timeout: float) -> CallRecord:
        """Wait until the call has a final status (tests, the CLI)."""

        def final() -> bool:
            record = self._calls.get(call_id)
            return record is not None and record.status.final

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(final), timeout)
        return replace(self._calls[call_id])

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def session_fields(session: Any) -> dict[str, Any]:
    """What a finished engine session adds to its call record: the transcript and the
    per-turn latency (marks relative to the session's start). Shared by every transport."""
    t0 = session.started_at or 0.0
    return {
        "transcript": [
            {"speaker": e.speaker, "text": e.text, "t": e.t, "interrupted": e.interrupted}
            for e in session.transcript
        ],
        "turn_metrics": [
            {
                "turn": m.turn,
                "marks": {k: round(v - t0, 3) for k, v in m.marks.items()},
                "stages_ms": m.stages_ms,
            }
            for m in session.turn_metrics
        ],
        **({"flow": flow} if (flow := _flow_record(session)) is not None else {}),
    }


def _flow_record(session: Any) -> dict[str, Any] | None:
    record = getattr(session, "flow_record", None)  # sessions of older shape have none
    return record() if callable(record) else None
