"""A caller who talks for 45 s without a pause, in a live call on the real models.

Before: the partial transcription raised ``ValueError: expected (1,80,3000)`` past
30 s and the call ended as ``error:partial-stt``. Now partials keep coming on a
sliding window, the final covers the whole utterance and the call goes on.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.stt_accuracy import word_error_rate
from tests.conftest import feed
from tests.voice_core.fakes import Collector
from tests.voice_core.stt.test_real_speech import long_utterance
from voice_core.config import AgentConfig, EndCallConfig, EndpointingConfig, STTConfig
from voice_core.events import AgentReply, CallEnded, TranscriptFinal, TranscriptPartial

pytestmark = pytest.mark.models

AGENT = AgentConfig(
    welcome_message=None,
    end_call=EndCallConfig(end_call_tool=False),
    # The recording's own pauses stay inside one turn.
    endpointing=EndpointingConfig(end_of_turn_silence_ms=1500, speculative_silence_ms=1200),
    stt=STTConfig(partial_interval_ms=300),
)


async def test_a_45_second_turn_keeps_the_call_going(engine, prompts, norm) -> None:
    audio, text = long_utterance(prompts)
    session = engine.new_session(AGENT, call_id="long-turn")
    col = Collector(session)
    await session.start()
    # Real time, as a caller speaks: at twice real time a busy 2-core machine moves the
    # partial window's cut points, and the final's words with them (WER 16.7 % once).
    await feed(session, np.concatenate([audio, np.zeros(16000 * 2, np.int16)]), pace=0.02)
    await col.wait_for(AgentReply, timeout=60)

    assert not col.of(CallEnded), col.of(CallEnded)
    partials = col.of(TranscriptPartial)
    assert len(partials) >= 10  # partials kept coming past the 30 s mark
    heard = " ".join(e.text for e in col.of(TranscriptFinal))
    assert 100 * word_error_rate([norm(text)], [norm(heard)]) <= 15.0
    await session.hangup()
