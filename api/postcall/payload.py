"""What a post-call delivery says: the default payload, and the variables templates see.

The default webhook body is the payload itself. Templates (webhook payload, email
subject/body, Slack text, CRM notes, WhatsApp text) see every payload key at the top
level (``{{ summary }}``, ``{{ extracted.order }}``, ``{{ call_context.first_name }}``)
plus ``payload`` (the whole dict, for ``{{ payload | tojson }}``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.calls.models import Call
from api.postcall.template_worker import ContextVars

SAMPLE_BY_TYPE: dict[str, Any] = {
    "string": "sample text",
    "number": 1.5,
    "integer": 2,
    "boolean": True,
    "date": "2025-01-31",
}


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite hands back naive UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat()


def _duration(call: Call) -> float | None:
    if call.answered_at is None or call.ended_at is None:
        return None
    answered, ended = call.answered_at, call.ended_at
    if answered.tzinfo is None:
        answered = answered.replace(tzinfo=UTC)
    if ended.tzinfo is None:
        ended = ended.replace(tzinfo=UTC)
    return round((ended - answered).total_seconds(), 3)


def contact_number(call: Call) -> str:
    """The other party: who we called, or who called us."""
    return call.to_number if call.direction == "outbound" else call.from_number


def call_payload(
    call: Call,
    *,
    event: str,
    delivery_id: str,
    agent_name: str | None,
    analysis: dict[str, Any],
    recording_url: str | None,
) -> dict[str, Any]:
    return {
        "event": event,
        "delivery_id": delivery_id,
        "call_id": call.id,
        "agent": {"id": call.agent_id, "name": agent_name, "version": call.agent_version},
        "direction": call.direction,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "contact_number": contact_number(call),
        "status": call.status,
        "end_reason": call.end_reason,
        "created_at": _iso(call.created_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "duration_s": _duration(call),
        "transcript": [
            {"speaker": line.get("speaker"), "text": line.get("text"), "t": line.get("t")}
            for line in (call.transcript or [])
            if isinstance(line, dict)
        ],
        "summary": call.summary,
        "sentiment": call.sentiment,
        "extracted": call.extracted,
        "analysis": analysis,
        "call_context": {k: v for k, v in (call.context or {}).items() if k != "simulation"},
        "recording_url": recording_url,
        "bulk_call_id": call.bulk_call_id,
    }


def sample_payload(extraction: list[Any], agent_name: str = "Sample agent") -> dict[str, Any]:
    """A realistic payload for test sends and for checking templates at save time."""
    now = datetime.now(UTC)
    return {
        "event": "call.completed",
        "delivery_id": "dlv_sample",
        "call_id": "call_sample",
        "agent": {"id": "agt_sample", "name": agent_name, "version": 1},
        "direction": "outbound",
        "from_number": "+15550100000",
        "to_number": "+15550100199",
        "contact_number": "+15550100199",
        "status": "completed",
        "end_reason": "caller_hangup",
        "created_at": now.isoformat(),
        "answered_at": now.isoformat(),
        "ended_at": now.isoformat(),
        "duration_s": 42.0,
        "transcript": [
            {"speaker": "agent", "text": "Hello, how can I help?", "t": 0.0},
            {"speaker": "caller", "text": "I'd like to book a cleaning.", "t": 2.1},
        ],
        "summary": "The caller booked a cleaning.",
        "sentiment": {"label": "positive", "score": 0.6},
        "extracted": {v.key: SAMPLE_BY_TYPE.get(v.type, "sample") for v in extraction},
        "analysis": {"status": "completed", "reason": None},
        "call_context": {},
        "recording_url": "https://voxline.example/api/v1/calls/call_sample/recording",
        "bulk_call_id": None,
    }


def template_context(payload: dict[str, Any]) -> dict[str, Any]:
    context_vars = ContextVars(payload.get("call_context") or {})
    return {**payload, "payload": payload, "call_context": context_vars, "vars": context_vars}


def transcript_text(payload: dict[str, Any]) -> str:
    return "\n".join(f"{line['speaker']}: {line['text']}" for line in payload["transcript"])
