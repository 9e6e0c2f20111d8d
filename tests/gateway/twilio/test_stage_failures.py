"""A stage that fails on a real phone call (real socket, server and models): the turn is
retried and the caller still gets the answer; the call is not ended over it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from gateway.calls import CallRecord, CallStatus, Direction
from gateway.simulated.carrier import SimulatedContact
from tests.gateway.conftest import QUICK_AGENT_ID, QUICK_WELCOME, LiveServer

pytestmark = pytest.mark.models

CALLER_LINE = "Do you sell tomato plants?"


async def test_a_tts_failure_on_a_reply_is_retried_and_the_call_completes(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vox = live.vox
    tts = vox.engine.tts
    real = tts.synthesize
    failed: list[str] = []

    async def once_broken(text: str, **kw: Any) -> AsyncIterator[np.ndarray]:
        # The welcome plays (and the simulated caller, who speaks with the same voice,
        # says its line); the first clause of the reply breaks the synthesizer once.
        if not failed and text.strip() not in QUICK_WELCOME + CALLER_LINE:
            failed.append(text)
            raise RuntimeError("phonemizer crashed")
        async for audio in real(text, **kw):
            yield audio

    monkeypatch.setattr(tts, "synthesize", once_broken)
    call_id = "call_tts_retry"
    await vox.store.create(
        CallRecord(id=call_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    sid = await vox.simulated.place_call(
        to="+15550009999",
        from_="+15550001111",
        agent_id=QUICK_AGENT_ID,
        call_id=call_id,
        contact=SimulatedContact(lines=[CALLER_LINE], ring_s=0.1),
    )
    call = await vox.simulated.wait(sid, timeout=90)
    assert call.report is not None and call.error is None
    record = await vox.store.wait_final(call_id, 10)
    assert failed, "the reply never reached the synthesizer"
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    speakers = [e["speaker"] for e in record.transcript]
    assert speakers[:3] == ["agent", "caller", "agent"], record.transcript
    # The retry said the reply itself, not the fallback line.
    reply = record.transcript[2]["text"]
    assert re.search(r"[a-z]", reply.lower()) and "having trouble" not in reply.lower()
