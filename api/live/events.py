"""Live monitoring events: their JSON shapes, in one place (sans-I/O).

Everything ``WS /api/v1/live`` sends is built here from plain inputs (a call
record, an engine event, a campaign summary), so the shapes can be tested with
no server and the broadcaster, Redis and the WebSocket handler only move dicts.

Every event is a JSON object with ``type`` and ``ts`` (Unix seconds, when the
server produced it). Types:

- ``hello``: the first message, ``{org_id, transport: "local" | "redis", queue_size}``.
- ``call.started``: a call record exists (queued, ringing or answered):
  ``{call_id, agent_id, direction, from_number, to_number, status, carrier, bulk_call_id}``.
- ``call.status``: ``{call_id, status, previous, agent_id, direction, to_number, from_number}``
  on every status change, final ones included.
- ``call.ended``: after a final status: ``{call_id, status, end_reason, duration_s}``.
- ``call.state``: what the conversation is doing: ``{call_id, state: "listening" |
  "thinking" | "speaking" | "ended"}`` (the rules of ``gateway.webrtc.live_events``).
- ``transcript``: ``{call_id, role: "user" | "agent", final, text}`` (+ ``turn`` for a
  final user line, ``interrupted`` for an agent line): partial hypotheses while the
  caller speaks, the final line at the endpoint, the agent's reply as heard.
- ``agent.text``: ``{call_id, turn, delta}``: reply tokens as the LLM streams them.
- ``turn.latency``: ``{call_id, turn, stages_ms, marks_ms}``: per-turn stage durations
  and the marks in ms after the caller's speech ended.
- ``tool``, ``dtmf``: ``{call_id, name, arguments}``, ``{call_id, digits}``.
- ``campaign.progress``: ``{bulk_call_id, name, campaign_status, summary}`` whenever a
  campaign's counters or status change.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.calls import CallRecord, CallStatus
from gateway.conversation import LiveEvents
from voice_core.events import (
    DtmfReceived,
    SessionEvent,
    ToolInvoked,
    TurnMetrics,
)

Event = dict[str, Any]

HELLO = "hello"
CALL_STARTED = "call.started"
CALL_STATUS = "call.status"
CALL_ENDED = "call.ended"
CALL_STATE = "call.state"
TRANSCRIPT = "transcript"
AGENT_TEXT = "agent.text"
TURN_LATENCY = "turn.latency"
TOOL = "tool"
DTMF = "dtmf"
CAMPAIGN_PROGRESS = "campaign.progress"

TYPES = (
    HELLO,
    CALL_STARTED,
    CALL_STATUS,
    CALL_ENDED,
    CALL_STATE,
    TRANSCRIPT,
    AGENT_TEXT,
    TURN_LATENCY,
    TOOL,
    DTMF,
    CAMPAIGN_PROGRESS,
)


def _event(kind: str, now: float | None = None, **fields: Any) -> Event:
    return {"type": kind, "ts": round(time.time() if now is None else now, 4), **fields}


def hello(org_id: str, transport: str, queue_size: int) -> Event:
    return _event(HELLO, org_id=org_id, transport=transport, queue_size=queue_size)


def _call_fields(record: CallRecord) -> dict[str, Any]:
    return {
        "call_id": record.id,
        "agent_id": record.agent_id,
        "direction": record.direction.value,
        "from_number": record.from_number,
        "to_number": record.to_number,
        "carrier": record.carrier,
    }


def call_started(record: CallRecord, bulk_call_id: int | None = None) -> Event:
    return _event(
        CALL_STARTED, **_call_fields(record), status=record.status.value, bulk_call_id=bulk_call_id
    )


def call_status(record: CallRecord) -> list[Event]:
    """``call.status`` for the record's (new) status, and ``call.ended`` after a final one."""
    history = record.status_history
    previous = history[-2][0] if len(history) >= 2 else None
    events = [
        _event(CALL_STATUS, **_call_fields(record), status=record.status.value, previous=previous)
    ]
    if record.status.final:
        events.append(
            _event(
                CALL_ENDED,
                call_id=record.id,
                status=record.status.value,
                end_reason=record.end_reason,
                duration_s=record.duration_s,
            )
        )
    return events


def campaign_progress(
    bulk_call_id: int, name: str, campaign_status: str, summary: dict[str, int]
) -> Event:
    return _event(
        CAMPAIGN_PROGRESS,
        bulk_call_id=bulk_call_id,
        name=name,
        campaign_status=campaign_status,
        summary=summary,
    )


class CallEvents:
    """One call's engine events -> live events. Stateful (the conversation state), so
    keep one per call; the per-frame ``AgentAudio`` costs a comparison, nothing more."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._live = LiveEvents()  # the same rules as the browser's data channel

    def encode(self, event: SessionEvent, now: float | None = None) -> list[Event]:
        out: list[Event] = []
        for message in self._live.encode(event):
            kind = message["type"]
            if kind == "state":
                out.append(_event(CALL_STATE, now, call_id=self.call_id, state=message["state"]))
            elif kind == "transcript":
                fields = {k: v for k, v in message.items() if k != "type"}
                out.append(_event(TRANSCRIPT, now, call_id=self.call_id, **fields))
            elif kind == "agent_text":
                out.append(
                    _event(
                        AGENT_TEXT,
                        now,
                        call_id=self.call_id,
                        turn=message.get("turn"),
                        delta=message["delta"],
                    )
                )
            # call_ended: the record's final status says it (call.ended), with its reason.
        if isinstance(event, TurnMetrics):
            out.append(self._latency(event, now))
        elif isinstance(event, ToolInvoked):
            out.append(
                _event(TOOL, now, call_id=self.call_id, name=event.name, arguments=event.arguments)
            )
        elif isinstance(event, DtmfReceived):
            out.append(_event(DTMF, now, call_id=self.call_id, digits=event.digits))
        if out and out[0]["type"] == TRANSCRIPT and out[0].get("role") == "user":
            if out[0].get("final") and hasattr(event, "turn"):
                out[0]["turn"] = event.turn  # type: ignore[union-attr]
        return out

    def _latency(self, metrics: TurnMetrics, now: float | None) -> Event:
        origin = metrics.marks.get("speech_end", min(metrics.marks.values(), default=0.0))
        marks_ms = {k: round((v - origin) * 1000, 1) for k, v in metrics.marks.items()}
        return _event(
            TURN_LATENCY,
            now,
            call_id=self.call_id,
            turn=metrics.turn,
            stages_ms=dict(metrics.stages_ms),
            marks_ms=marks_ms,
        )


def dumps(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), default=str)


def is_final_status(status: str) -> bool:
    try:
        return CallStatus(status).final
    except ValueError:
        return False
