"""Why a call ended: one vocabulary for the engine, every transport and the control plane.

An end is an ``EndReason`` (what kind of end, which decides the call's status)
plus a free ``detail`` (which stage failed, what timed out). Its text form,
``str(CallEnd)``, is what call records store and the API returns, so the texts
below are a public format: ``error:stt:RuntimeError``, ``caller_hangup``,
``timeout: no message for 10 s (waiting for media)``, ``carrier:completed``.

The engine still hands its transport plain strings (``CallEnded.reason``);
``CallEnd.parse`` maps them back, so a reason can travel as text and be typed
again wherever a decision depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EndReason(StrEnum):
    # The engine's own (voice_core.session).
    CALLER_HANGUP = "caller_hangup"
    AGENT_ENDED = "agent_ended"
    MAX_DURATION = "max_duration"
    SILENCE_TIMEOUT = "silence_timeout"
    ERROR = "error"  # detail: "<stage>:<exception>", e.g. "stt:RuntimeError"
    # The control plane's hang-ups.
    API_HANGUP = "api_hangup"
    SERVER_SHUTDOWN = "server_shutdown"
    SERVER_DRAINING = "server_draining"
    # The process carrying the call died (SIGKILL, a crash, a lost host); another one
    # finalized the record with what was said so far. Detail: which process, and why.
    INTERRUPTED = "interrupted"
    # The transports'.
    CALLER_DISCONNECTED = "caller_disconnected"  # gone mid-call without saying goodbye
    NEVER_STARTED = "never_started"  # gone before the call could start
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    PEER_FAILED = "peer_connection_failed"
    PEER_CLOSED = "peer_connection_closed"
    UNKNOWN_AGENT = "unknown_agent"
    ALREADY_ENDED = "already_ended"  # a stream for a call record that is already final
    OVER_CAPACITY = "over_capacity"  # the organization is at its cap on calls in flight
    CARRIER = "carrier"  # what the carrier reported (its status callbacks)
    CARRIER_FAILED = "carrier_failed"  # the carrier refused an action; detail "<carrier>:<why>"
    # Handed to a person or queue (API or the agent's transfer_call); detail: the target.
    TRANSFERRED = "transferred"
    # An answering machine took the call (outbound screening); detail: what we did.
    VOICEMAIL = "voicemail"
    ENDED = "ended"  # nobody said why
    OTHER = "other"  # a text this vocabulary does not know; kept as it is


# The text of an end with a detail; without one, the reason's own value. Reasons
# whose text never changes ignore the detail.
_WITH_DETAIL: dict[EndReason, str] = {
    EndReason.CALLER_HANGUP: "caller_hangup ({})",
    EndReason.ERROR: "error:{}",
    EndReason.TIMEOUT: "timeout: {}",
    EndReason.PROTOCOL_ERROR: "protocol_error: {}",
    EndReason.UNKNOWN_AGENT: "unknown agent_id {}",
    EndReason.ALREADY_ENDED: "call {}",
    EndReason.CARRIER: "carrier:{}",
    EndReason.TRANSFERRED: "transferred:{}",
    EndReason.VOICEMAIL: "voicemail:{}",
    EndReason.INTERRUPTED: "interrupted: {}",
    EndReason.CARRIER_FAILED: "{}",
    EndReason.OTHER: "{}",
}
_FIXED: dict[EndReason, str] = {
    EndReason.CALLER_DISCONNECTED: "caller_disconnected without 'stop'",
    EndReason.NEVER_STARTED: "caller_disconnected before 'start'",
}
# How parse() finds the detail in a text: (prefix, suffix, reason), first match wins.
_FRAMES: tuple[tuple[str, str, EndReason], ...] = (
    ("protocol_error: ", "", EndReason.PROTOCOL_ERROR),
    ("caller_hangup (", ")", EndReason.CALLER_HANGUP),
    ("timeout: ", "", EndReason.TIMEOUT),
    ("unknown agent_id ", "", EndReason.UNKNOWN_AGENT),
    ("carrier:", "", EndReason.CARRIER),
    ("transferred:", "", EndReason.TRANSFERRED),
    ("voicemail:", "", EndReason.VOICEMAIL),
    ("interrupted: ", "", EndReason.INTERRUPTED),
    ("error:", "", EndReason.ERROR),
)
# Only these come back from a bare value; the rest are never written without a detail.
_BARE = {
    r for r in EndReason if r not in _FIXED and r not in (EndReason.CARRIER_FAILED, EndReason.OTHER)
}


@dataclass(frozen=True)
class CallEnd:
    reason: EndReason
    detail: str = ""

    def __str__(self) -> str:
        if self.reason in _FIXED:
            return _FIXED[self.reason]
        if self.detail and self.reason in _WITH_DETAIL:
            return _WITH_DETAIL[self.reason].format(self.detail)
        return self.reason.value

    @classmethod
    def parse(cls, text: str) -> CallEnd:
        """The typed form of a reason text (from the engine, the API, a stored record).

        ``str(CallEnd.parse(t)) == t`` for every non-empty text (the empty one reads as
        ENDED, as it always has); a text it does not know is OTHER, kept as it is.
        """
        if not text:
            return cls(EndReason.ENDED)
        for reason, fixed in _FIXED.items():
            if text == fixed:
                return cls(reason)
        for prefix, suffix, reason in _FRAMES:
            detail = text.removeprefix(prefix)
            if detail != text and detail.endswith(suffix) and len(detail) > len(suffix):
                return cls(reason, detail[: len(detail) - len(suffix)])
        if text.startswith("call ") and " already ended" in text:
            return cls(EndReason.ALREADY_ENDED, text.removeprefix("call "))
        try:
            reason = EndReason(text)
        except ValueError:
            return cls(EndReason.OTHER, text)
        return cls(reason) if reason in _BARE else cls(EndReason.OTHER, text)


def as_end(reason: CallEnd | EndReason | str) -> CallEnd:
    """Any way a caller names an end (a typed end, a bare reason, a text) as a CallEnd."""
    if isinstance(reason, CallEnd):
        return reason
    if isinstance(reason, EndReason):
        return CallEnd(reason)
    return CallEnd.parse(reason)
