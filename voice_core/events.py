"""What a call session tells its transport and the control plane.

The whole interface out of the engine: a transport plays ``AgentAudio``, drops
queued audio on ``ClearAudio``, and may mark ``AgentUtteranceEnd``; everything
else is for logs, live views and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice_core.end_reasons import CallEnd


@dataclass(frozen=True)
class AgentAudio:
    pcm: np.ndarray  # one 20 ms frame, int16 mono 16 kHz
    utterance_id: int


@dataclass(frozen=True)
class ClearAudio:
    """Barge-in: drop every agent frame not yet played."""

    utterance_id: int


@dataclass(frozen=True)
class AgentUtteranceEnd:
    """The last frame of one agent utterance has been handed out (phone marks use this)."""

    utterance_id: int
    text: str
    interrupted: bool


@dataclass(frozen=True)
class TranscriptPartial:
    text: str


@dataclass(frozen=True)
class TranscriptFinal:
    text: str
    turn: int


@dataclass(frozen=True)
class AgentTextDelta:
    """A token of the reply as the LLM streams it (before it is spoken)."""

    text: str
    turn: int


@dataclass(frozen=True)
class AgentReply:
    """What the agent actually said in a turn: cut at the barge-in point if interrupted."""

    text: str
    turn: int
    interrupted: bool


@dataclass(frozen=True)
class TransferRequested:
    """The agent chose to hand the caller to one of its allowed targets (``transfer_call``);
    the transport does the hand-over. ``briefing`` is said to the caller first (warm)."""

    target: str  # the target's name in the agent's config
    to: str  # the E.164 number or SIP URI behind it
    mode: str  # "cold" | "warm"
    briefing: str | None = None


@dataclass(frozen=True)
class DtmfRequested:
    """The agent pressed keys (``send_dtmf``): the transport has the carrier play them."""

    digits: str


@dataclass(frozen=True)
class DtmfReceived:
    digits: str


@dataclass(frozen=True)
class TurnMetrics:
    turn: int
    marks: dict[str, float]  # mark name -> seconds on the session clock
    stages_ms: dict[str, float] = field(default_factory=dict)
    end_of_turn: str = ""  # what ended the caller's turn ("model: complete (0.93)", "silence")


@dataclass(frozen=True)
class ToolInvoked:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class CallEnded:
    # The text form of a ``CallEnd`` (caller_hangup, agent_ended, max_duration,
    # silence_timeout, error:<stage>:<exception>, ...): what records store and the
    # live feed shows. ``end`` is the same reason typed.
    reason: str

    @property
    def end(self) -> CallEnd:
        return CallEnd.parse(self.reason)


SessionEvent = (
    AgentAudio
    | ClearAudio
    | AgentUtteranceEnd
    | TranscriptPartial
    | TranscriptFinal
    | AgentTextDelta
    | AgentReply
    | DtmfReceived
    | TurnMetrics
    | ToolInvoked
    | TransferRequested
    | DtmfRequested
    | CallEnded
)
