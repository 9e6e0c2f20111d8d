"""End reasons: the texts records store stay what they were, and status comes from the kind."""

from __future__ import annotations

import pytest

from gateway.bridge import end_status
from gateway.calls import CallStatus
from gateway.carriers import carrier_reason
from voice_core.end_reasons import CallEnd, EndReason, as_end
from voice_core.events import CallEnded

# Every reason text the engine, the transports and the control plane write, with the
# status a call ending that way gets.
TEXTS = {
    "caller_hangup": (EndReason.CALLER_HANGUP, CallStatus.COMPLETED),
    "caller_hangup (whatsapp terminate)": (EndReason.CALLER_HANGUP, CallStatus.COMPLETED),
    "agent_ended": (EndReason.AGENT_ENDED, CallStatus.COMPLETED),
    "transferred:+15550199000": (EndReason.TRANSFERRED, CallStatus.COMPLETED),
    "transferred:sip:desk@pbx.example.test": (EndReason.TRANSFERRED, CallStatus.COMPLETED),
    "max_duration": (EndReason.MAX_DURATION, CallStatus.COMPLETED),
    "silence_timeout": (EndReason.SILENCE_TIMEOUT, CallStatus.COMPLETED),
    "error:stt:RuntimeError": (EndReason.ERROR, CallStatus.FAILED),
    "error:gateway:KeyError": (EndReason.ERROR, CallStatus.FAILED),
    "error:webrtc:agent-audio:ValueError": (EndReason.ERROR, CallStatus.FAILED),
    "api_hangup": (EndReason.API_HANGUP, CallStatus.COMPLETED),
    "server_shutdown": (EndReason.SERVER_SHUTDOWN, CallStatus.COMPLETED),
    "server_draining": (EndReason.SERVER_DRAINING, CallStatus.COMPLETED),
    "caller_disconnected without 'stop'": (EndReason.CALLER_DISCONNECTED, CallStatus.COMPLETED),
    "caller_disconnected before 'start'": (EndReason.NEVER_STARTED, CallStatus.FAILED),
    "timeout: no message for 3 s (waiting for media)": (EndReason.TIMEOUT, CallStatus.FAILED),
    "timeout: peer did not connect within 10 s": (EndReason.TIMEOUT, CallStatus.FAILED),
    "protocol_error: message is not JSON": (EndReason.PROTOCOL_ERROR, CallStatus.FAILED),
    "peer_connection_failed": (EndReason.PEER_FAILED, CallStatus.FAILED),
    "peer_connection_closed": (EndReason.PEER_CLOSED, CallStatus.COMPLETED),
    "unknown agent_id 'no-such-agent'": (EndReason.UNKNOWN_AGENT, CallStatus.FAILED),
    "call call_1 already ended (completed)": (EndReason.ALREADY_ENDED, CallStatus.FAILED),
    "carrier:completed": (EndReason.CARRIER, CallStatus.COMPLETED),
    "ended": (EndReason.ENDED, CallStatus.COMPLETED),
    "test_over": (EndReason.OTHER, CallStatus.COMPLETED),
    "orphaned: the process carrying it went away": (EndReason.OTHER, CallStatus.COMPLETED),
}


@pytest.mark.parametrize("text", TEXTS)
def test_every_reason_text_reads_back_as_itself_with_its_status(text: str) -> None:
    reason, status = TEXTS[text]
    end = CallEnd.parse(text)
    assert end.reason is reason and str(end) == text
    assert end_status(end) is status
    assert CallEnded(text).end == end


def test_typed_ends_write_the_stored_texts() -> None:
    assert str(CallEnd(EndReason.ERROR, "stt:RuntimeError")) == "error:stt:RuntimeError"
    assert str(CallEnd(EndReason.NEVER_STARTED)) == "caller_disconnected before 'start'"
    assert str(CallEnd(EndReason.CARRIER_FAILED, "whatsapp:refused")) == "whatsapp:refused"
    assert carrier_reason("no-answer") == "carrier:no-answer"
    assert as_end("") == CallEnd(EndReason.ENDED)  # an empty reason was always "ended"
    assert as_end(EndReason.API_HANGUP) == CallEnd(EndReason.API_HANGUP)
