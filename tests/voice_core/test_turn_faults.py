"""A stage that fails fails its turn, not the call: retried once, then the fallback line;
failing turns in a row end the call after the caller heard the fallback (fakes, no models)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.voice_core.fakes import FakeLLM, FakeSTT, FakeTTS, failing, words
from tests.voice_core.test_session import make_agent, say, start_session
from voice_core.config import LLMConfig, STTConfig
from voice_core.events import AgentReply, CallEnded, TranscriptFinal, TranscriptPartial
from voice_core.stt.base import Transcription
from voice_core.turn_faults import StageError, TurnFailure, TurnFaults, should_retry

ANSWER = "Sure, I can help with that."


class FlakySTT(FakeSTT):
    """Fails its first ``failures`` transcriptions, then hears the caller."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("CUDA out of memory")
        return await super().transcribe(audio)


class FlakyTTS(FakeTTS):
    """Fails on the first ``failures`` texts (``None``: always)."""

    def __init__(self, failures: int | None) -> None:
        super().__init__()
        self.failures = failures

    async def synthesize(
        self, text: str, *, length_scale: float = 1.0
    ) -> AsyncIterator[np.ndarray]:
        if self.failures is None or self.failures > 0:
            if self.failures is not None:
                self.failures -= 1
            self.texts.append(text)
            raise ValueError(f"cannot phonemize {text!r}")
        async for audio in super().synthesize(text, length_scale=length_scale):
            yield audio


def no_partials(**overrides: object):
    return make_agent(stt=STTConfig(partial_interval_ms=0), **overrides)


@pytest.mark.parametrize("stage", ["stt", "llm", "tts"])
async def test_a_stage_that_fails_once_is_retried_and_the_caller_hears_the_answer(
    stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    stt = FlakySTT(1 if stage == "stt" else 0)
    llm = FakeLLM(failing("connection reset"), words(ANSWER)) if stage == "llm" else None
    tts = FlakyTTS(1 if stage == "tts" else 0)
    s, col = await start_session(agent=no_partials(), stt=stt, llm=llm, tts=tts)
    with caplog.at_level(logging.WARNING):
        await say(s)
        reply = await col.wait_for(AgentReply)
    assert reply.text == ANSWER and not reply.interrupted
    assert f"{stage.upper()} failed, trying it again" in caplog.text
    assert [f.text for f in col.of(TranscriptFinal)] == ["I need an appointment"]
    assert [m["role"] for m in s.history] == ["system", "user", "assistant"]
    assert not s.ended.is_set()
    await s.hangup()


async def test_a_turn_that_fails_twice_gets_the_fallback_line_and_the_call_goes_on() -> None:
    llm = FakeLLM(RuntimeError("HTTP 500"), RuntimeError("HTTP 500"), words(ANSWER))
    s, col = await start_session(agent=no_partials(), llm=llm)
    await say(s)
    fallback = await col.wait_for(AgentReply)
    assert fallback.text == make_agent().fallback_line
    assert len(llm.calls) == 2  # tried, retried once, then the fallback line
    await say(s)
    answer = await col.wait_for(AgentReply, lambda r: r.text == ANSWER)
    assert not answer.interrupted and not s.ended.is_set()
    await s.hangup()


async def test_a_good_turn_resets_the_count_of_failed_turns() -> None:
    boom = RuntimeError("HTTP 500")
    # Turn 1 fails (twice), turn 2 answers, turn 3 fails (twice): never two in a row.
    llm = FakeLLM(boom, boom, words(ANSWER), boom, boom, words(ANSWER))
    s, col = await start_session(agent=no_partials(max_failed_turns=2), llm=llm)
    for _ in range(3):
        before = len(col.of(AgentReply))
        await say(s)
        await col.wait_for(AgentReply, lambda r, n=before: col.of(AgentReply).index(r) >= n)
    assert [r.text for r in col.of(AgentReply)] == [make_agent().fallback_line, ANSWER] + [
        make_agent().fallback_line
    ]
    assert not s.ended.is_set()
    await s.hangup()


async def test_an_llm_that_never_answers_is_not_waited_for_twice() -> None:
    async def hang():
        await asyncio.sleep(30)
        yield  # pragma: no cover

    llm = FakeLLM(hang)
    agent = no_partials(llm=LLMConfig(first_token_timeout_s=0.3))
    s, col = await start_session(agent=agent, llm=llm)
    await say(s)
    reply = await col.wait_for(AgentReply)
    assert reply.text == agent.fallback_line and len(llm.calls) == 1
    await s.hangup()


async def test_when_even_the_fallback_cannot_be_spoken_the_call_ends_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tts = FlakyTTS(None)
    agent = no_partials(welcome_message="Hello, Bright Smile Dental.")
    s, col = await start_session(agent=agent, tts=tts)
    with caplog.at_level(logging.WARNING):
        await asyncio.sleep(0.1)
        # A fixed line that fails is retried, then skipped: the call is still up.
        assert tts.texts == ["Hello, Bright Smile Dental."] * 2 and not s.ended.is_set()
        await say(s)
        ended = await col.wait_for(CallEnded)
    assert ended.reason == "error:tts:ValueError"
    # The reply, its retry, then the fallback line: nothing could reach the caller.
    assert tts.texts[2:] == [ANSWER, ANSWER, agent.fallback_line]
    assert "the fallback line failed too" in caplog.text


class BrokenPartials:
    """A streaming STT whose partials always fail and whose final hears the caller."""

    def __init__(self) -> None:
        self.partials = 0

    def stream(self, prompt: str | None = None) -> BrokenPartials:
        return self

    async def partial(self, audio: np.ndarray) -> Transcription:
        self.partials += 1
        raise RuntimeError("decoder state corrupt")

    async def final(self, audio: np.ndarray) -> Transcription:
        return Transcription("I need an appointment", no_speech_prob=0.01)

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        return await self.final(audio)


async def test_a_failed_partial_transcription_never_ends_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stt = BrokenPartials()
    agent = make_agent(stt=STTConfig(partial_interval_ms=40))
    s, col = await start_session(agent=agent, stt=stt)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        await say(s, ms=600, pace=0.02)  # real time: partials come due while speaking
        reply = await col.wait_for(AgentReply)
    assert stt.partials >= 2 and not col.of(TranscriptPartial)
    assert reply.text == ANSWER and not s.ended.is_set()
    assert "partial transcription failed (1 so far), skipped" in caplog.text
    await s.hangup()


def test_the_policy_retries_once_unless_heard_or_pointless_and_counts_in_a_row() -> None:
    glitch = StageError("tts", ValueError("odd text"))
    timeout = StageError("llm", TimeoutError(), retryable=False)
    assert should_retry(glitch, 1, heard_any=False)
    assert not should_retry(glitch, 2, heard_any=False)  # once
    assert not should_retry(glitch, 1, heard_any=True)  # would repeat what was heard
    assert not should_retry(timeout, 1, heard_any=False)
    assert glitch.end_reason == "error:tts:ValueError"
    faults = TurnFaults(limit=3)
    heard = TurnFailure(glitch, fallback_heard=True)
    assert not faults.turn_failed(heard) and not faults.turn_failed(heard)
    faults.turn_succeeded()
    assert not faults.turn_failed(heard) and not faults.turn_failed(heard)
    assert faults.turn_failed(heard)
    assert TurnFaults(limit=3).turn_failed(TurnFailure(glitch, fallback_heard=False))
