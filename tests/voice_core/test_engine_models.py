"""The engine with the real embedded models: Whisper tiny.en, SmolLM2 on llama.cpp, Piper."""

from __future__ import annotations

import asyncio
import re
import socket

import numpy as np
import pytest

from tests.conftest import feed, silence
from tests.voice_core.fakes import Collector
from voice_core.config import AgentConfig, EndCallConfig
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentTextDelta,
    ClearAudio,
    TranscriptFinal,
    TurnMetrics,
)
from voice_core.llm.openai_compat import OpenAICompatibleLLM
from voice_core.metrics import MARKS
from voice_core.session import CallSession

pytestmark = pytest.mark.models

AGENT = AgentConfig(
    name="Bright Smile Dental",
    system_prompt=(
        "You are the receptionist of Bright Smile Dental. Answer the caller in one short, "
        "friendly sentence."
    ),
    welcome_message=None,
    end_call=EndCallConfig(end_call_tool=False),
)


def english_words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


async def run_turn(session: CallSession, caller: np.ndarray) -> Collector:
    col = Collector(session)
    await session.start()
    await feed(session, np.concatenate([silence(300), caller, silence(900)]))
    await col.wait_for(AgentReply, timeout=30)
    return col


async def test_a_spoken_question_gets_a_spoken_answer(engine) -> None:
    caller = engine.tts.synthesize_sync("Hello, I would like to book a teeth cleaning for Tuesday.")
    session = engine.new_session(AGENT, call_id="real-1")
    col = await run_turn(session, caller)

    final = col.of(TranscriptFinal)[0].text.lower()
    for word in ("book", "cleaning", "tuesday"):
        assert word in final

    reply = col.of(AgentReply)[0]
    deltas = col.of(AgentTextDelta)
    assert len(deltas) > 3 and "".join(d.text for d in deltas).strip()  # streamed token by token

    audio = np.concatenate([e.pcm for e in col.of(AgentAudio)])
    assert audio.size > 16000 * 0.5
    heard = english_words(engine.stt.transcribe_sync(audio).text)
    said = set(english_words(reply.text))
    assert len(heard) >= 3
    overlap = sum(1 for w in heard if w in said) / len(heard)
    assert overlap > 0.5, (heard, reply.text)

    metrics = col.of(TurnMetrics)[0]
    assert set(metrics.marks) == set(MARKS)
    pipeline = [metrics.marks[m] for m in MARKS if m != "endpoint"]
    assert pipeline == sorted(pipeline)
    assert metrics.marks["endpoint"] <= metrics.marks["first_audio_out"]
    await session.hangup()


async def test_caller_talking_over_the_agent_stops_it(engine) -> None:
    agent = AGENT.model_copy(
        update={
            "welcome_message": "Thank you for calling Bright Smile Dental, where we care about "
            "your smile. Our office is open Monday to Friday from eight to six, and on "
            "Saturday mornings. How can I help you today?"
        }
    )
    session = engine.new_session(agent, call_id="real-barge")
    col = Collector(session)
    await session.start()
    await col.wait_for(AgentAudio, timeout=10)
    await asyncio.sleep(1.0)
    caller = engine.tts.synthesize_sync("Sorry to interrupt, I need to cancel my appointment.")
    await feed(session, np.concatenate([caller, silence(900)]))
    clear = await col.wait_for(ClearAudio, timeout=10)
    welcome = col.of(AgentReply)[0]
    assert welcome.interrupted
    assert 0 < len(welcome.text) < len(agent.welcome_message)
    # nothing of the welcome after the clear, and the caller's words were answered
    after = col.events[col.events.index(clear) :]
    assert not [
        e for e in after if isinstance(e, AgentAudio) and e.utterance_id == clear.utterance_id
    ]
    await col.wait_for(AgentReply, lambda r: r.turn != welcome.turn, timeout=30)
    said = col.of(TranscriptFinal)[0].text.lower()
    assert "cancel" in said and "appointment" in said
    await session.hangup()


class CountingLLM:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    def stream(self, messages, *args, **kwargs):
        if any(m["role"] == "user" for m in messages):  # not the call-start prewarm
            self.calls += 1
        return self.inner.stream(messages, *args, **kwargs)


async def test_line_noise_is_not_answered(engine) -> None:
    llm = CountingLLM(engine.llm_for(AGENT.llm))
    session = CallSession(AGENT, stt=engine.stt, llm=llm, tts=engine.tts, call_id="noise")
    col = Collector(session)
    await session.start()
    rng = np.random.default_rng(7)
    hiss = rng.normal(0, 60, 16000).astype(np.int16)  # line hiss
    static = rng.normal(0, 2500, 16000).astype(np.int16)  # loud static burst
    await feed(session, np.concatenate([hiss, static, silence(1000)]))
    await asyncio.sleep(0.5)
    assert llm.calls == 0
    assert not col.of(TranscriptFinal) and not col.of(AgentAudio)
    await session.hangup()


async def test_llm_endpoint_down_says_the_fallback_line(engine, caplog) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens here once closed
    dead = OpenAICompatibleLLM(f"http://127.0.0.1:{dead_port}/v1", "none")
    agent = AGENT.model_copy(update={"fallback_line": "Sorry, please hold on a moment."})
    session = CallSession(agent, stt=engine.stt, llm=dead, tts=engine.tts, call_id="llm-down")
    caller = engine.tts.synthesize_sync("What time do you open tomorrow?")
    col = await run_turn(session, caller)
    reply = col.of(AgentReply)[0]
    assert reply.text == "Sorry, please hold on a moment."
    assert col.of(AgentAudio)  # the fallback is spoken, not just logged
    assert "LLM failed" in caplog.text and "Connect" in caplog.text
    await session.hangup()
