"""End reason -> the status a finished call record gets. The one place that decides it."""

from __future__ import annotations

from gateway.calls import CallStatus
from voice_core.end_reasons import CallEnd, EndReason

# Everything else (the caller or the agent said goodbye, a hang-up from the control
# plane, a peer that closed, a transfer to a person: our part of it went as asked) is
# a completed call.
_FAILED = frozenset(
    {
        EndReason.ERROR,
        EndReason.TIMEOUT,
        EndReason.PROTOCOL_ERROR,
        EndReason.NEVER_STARTED,
        EndReason.PEER_FAILED,
        EndReason.UNKNOWN_AGENT,
        EndReason.ALREADY_ENDED,
        EndReason.OVER_CAPACITY,
        EndReason.CARRIER_FAILED,
        EndReason.INTERRUPTED,
    }
)


def end_status(end: CallEnd) -> CallStatus:
    if end.reason is EndReason.VOICEMAIL:
        return CallStatus.VOICEMAIL  # reached, but a machine: campaigns may retry it
    return CallStatus.FAILED if end.reason in _FAILED else CallStatus.COMPLETED
