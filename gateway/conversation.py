"""Engine events as the JSON messages a browser gets on the call's data channel.

Sans-I/O: ``LiveEvents.encode(event)`` returns the messages (dicts) to send, and
tracks the conversation state the widget shows (listening / thinking /
speaking), so the rule for each state lives in one place:

- ``speaking`` from the first agent audio frame of an utterance,
- ``listening`` when that utterance ends or is cut by barge-in,
- ``thinking`` once the caller's turn has a final transcript (the reply is on its way).

Messages: ``{"type": "state", "state"}``, ``{"type": "transcript", "role":
"user"|"agent", "final", "text"}``, ``{"type": "agent_text", "delta"}``,
``{"type": "call_ended", "reason"}``. Audio itself travels on the media track.
"""

from __future__ import annotations

from typing import Any

from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentTextDelta,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    SessionEvent,
    TranscriptFinal,
    TranscriptPartial,
)

Message = dict[str, Any]


class LiveEvents:
    def __init__(self) -> None:
        self.state = "listening"

    def _to(self, state: str) -> list[Message]:
        if state == self.state:
            return []
        self.state = state
        return [{"type": "state", "state": state}]

    def encode(self, event: SessionEvent) -> list[Message]:
        if isinstance(event, AgentAudio):
            return self._to("speaking")
        if isinstance(event, AgentUtteranceEnd | ClearAudio):
            return self._to("listening")
        if isinstance(event, TranscriptPartial):
            return [{"type": "transcript", "role": "user", "final": False, "text": event.text}]
        if isinstance(event, TranscriptFinal):
            msg = {"type": "transcript", "role": "user", "final": True, "text": event.text}
            return [msg, *self._to("thinking")]
        if isinstance(event, AgentTextDelta):
            return [{"type": "agent_text", "delta": event.text, "turn": event.turn}]
        if isinstance(event, AgentReply):
            return [
                {
                    "type": "transcript",
                    "role": "agent",
                    "final": True,
                    "text": event.text,
                    "interrupted": event.interrupted,
                }
            ]
        if isinstance(event, CallEnded):
            return [*self._to("ended"), {"type": "call_ended", "reason": event.reason}]
        return []

    def started(self, call_id: str) -> list[Message]:
        return [
            {"type": "call_started", "call_id": call_id},
            {"type": "state", "state": self.state},
        ]
