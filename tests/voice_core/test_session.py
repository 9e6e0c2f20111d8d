"""Turn logic with fast fakes: replies, speculation, barge-in, failures, end conditions."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from tests.conftest import feed, silence
from tests.voice_core.fakes import (
    Collector,
    FakeClock,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVad,
    end_call_reply,
    failing,
    tone,
    words,
)
from voice_core.audio.frames import FrameError
from voice_core.config import AgentConfig, EndCallConfig, EndpointingConfig, LLMConfig
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentTextDelta,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    DtmfReceived,
    ToolInvoked,
    TranscriptFinal,
    TurnMetrics,
)
from voice_core.metrics import MARKS
from voice_core.session import CallSession

FAST = 0.004  # feed caller frames 5x faster than real time where timing does not matter


def make_agent(**overrides) -> AgentConfig:
    base = dict(
        welcome_message=None,
        endpointing=EndpointingConfig(
            speech_start_ms=40,
            speculative_silence_ms=100,
            end_of_turn_silence_ms=300,
            interruption_min_speech_ms=200,
            min_utterance_ms=100,
        ),
        end_call=EndCallConfig(silence_timeout_s=30, max_duration_s=60),
    )
    base.update(overrides)
    return AgentConfig(**base)


async def start_session(agent=None, stt=None, llm=None, tts=None, **kw):
    s = CallSession(
        agent or make_agent(),
        stt=stt or FakeSTT(),
        llm=llm or FakeLLM(words("Sure, I can help with that.")),
        tts=tts or FakeTTS(),
        vad=FakeVad(),
        call_id="t",
        playout_lead_ms=60,
        **kw,
    )
    col = Collector(s)
    await s.start()
    return s, col


async def say(session, ms: int = 400, trailing_ms: int = 500, pace: float = FAST) -> None:
    await feed(session, np.concatenate([tone(ms), silence(trailing_ms)]), pace)


async def test_a_turn_is_transcribed_answered_and_spoken() -> None:
    llm = FakeLLM(words("Sure, I can book you in on Tuesday."))
    s, col = await start_session(llm=llm)
    await say(s)
    reply = await col.wait_for(AgentReply)
    assert reply.text == "Sure, I can book you in on Tuesday." and not reply.interrupted
    final = col.of(TranscriptFinal)
    assert [f.text for f in final] == ["I need an appointment"]
    # the reply arrived as a token stream and became audio
    deltas = col.of(AgentTextDelta)
    assert "".join(d.text for d in deltas) == reply.text and len(deltas) > 1
    audio = col.of(AgentAudio)
    assert len(audio) == (8 * 60) // 20  # 8 words x 60 ms of fake speech
    # the LLM saw the system prompt and the caller's words
    assert llm.calls[0][0]["role"] == "system"
    assert llm.calls[0][-1] == {"role": "user", "content": "I need an appointment"}
    assert [m["role"] for m in s.history] == ["system", "user", "assistant"]
    await s.hangup()


async def test_latency_marks_are_complete_and_ordered() -> None:
    s, col = await start_session()
    await say(s)
    metrics = await col.wait_for(TurnMetrics)
    marks = metrics.marks
    assert set(marks) == set(MARKS)
    pipeline = [m for m in MARKS if m != "endpoint"]
    assert [marks[m] for m in pipeline] == sorted(marks[m] for m in pipeline)
    assert marks["speech_end"] <= marks["endpoint"] <= marks["first_audio_out"]
    assert metrics.stages_ms["response"] >= 0
    assert set(metrics.stages_ms) >= {"endpointing_wait", "stt", "llm_first_token", "response"}
    await s.hangup()


async def test_speculative_reply_is_discarded_when_the_caller_goes_on() -> None:
    stt = FakeSTT(lambda audio: f"utterance of {audio.size // 1600} tenths")
    llm = FakeLLM(words("One moment please."))
    s, col = await start_session(stt=stt, llm=llm)
    # 400 ms speech, 200 ms pause (past the 100 ms speculation point, before the
    # 300 ms end of turn), 400 ms more speech, then a real end of turn.
    audio = np.concatenate([tone(400), silence(200), tone(400), silence(500)])
    await feed(s, audio, pace=0.02)
    await col.wait_for(AgentReply)
    finals = col.of(TranscriptFinal)
    assert len(finals) == 1  # the discarded speculation never reached the transcript
    assert len(llm.calls) == 2  # one speculative, one real
    assert stt.calls[-1] > stt.calls[0]  # the real turn covers the whole utterance
    assert [m["role"] for m in s.history] == ["system", "user", "assistant"]
    await s.hangup()


async def test_barge_in_clears_audio_cancels_the_reply_and_keeps_what_was_heard() -> None:
    long_reply = "Our clinic is open from eight in the morning, until six in the evening. " * 3
    llm = FakeLLM(words(long_reply.strip()), token_delay=0.03)
    s, col = await start_session(llm=llm)
    await say(s)
    first = await col.wait_for(AgentAudio)
    await asyncio.sleep(0.3)  # the caller hears ~0.3 s, then talks over the agent
    await feed(s, tone(400), pace=0.02)
    clear = await col.wait_for(ClearAudio)
    assert clear.utterance_id == first.utterance_id
    reply = await col.wait_for(AgentReply)
    assert reply.interrupted
    heard = reply.text.split()
    assert 0 < len(heard) < len(long_reply.split())
    assert long_reply.split()[: len(heard)] == heard
    # no audio of that utterance after the clear
    idx = col.events.index(clear)
    assert not [
        e
        for e in col.events[idx:]
        if isinstance(e, AgentAudio) and e.utterance_id == clear.utterance_id
    ]
    # the LLM stream gets closed (cancellation unwinds over a few loop turns)
    for _ in range(50):
        if llm.closed_early:
            break
        await asyncio.sleep(0.01)
    assert llm.closed_early == 1
    assert s.history[-1] == {"role": "assistant", "content": reply.text}
    await s.hangup()


async def until(condition, timeout: float = 10.0) -> None:
    """Wait for the session's tasks to get somewhere (not for audio to play)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def play_until(clock: FakeClock, col: Collector, t_end: float, frames: int) -> None:
    """Move a fake session clock in 20 ms steps, each time waiting for the frames it makes
    due: playback started at 100.0 s, and a frame goes out 60 ms before it is heard.
    (Jumping the clock instead would look like a stalled engine: playout restarts.)"""
    t = clock() + 0.001
    while True:
        clock.t = t
        due = min(frames, int((t - 100.0 + 0.06) / 0.02) + 1)
        await until(lambda due=due: len(col.of(AgentAudio)) >= due)
        if t >= t_end:
            return
        t += 0.02


async def test_agent_audio_runs_only_the_lead_ahead_of_the_session_clock() -> None:
    # The fake-clock twin of the pacing in the tests above: playout follows the injected
    # clock, so a frozen clock holds the reply at its 60 ms lead however long we wait.
    clock = FakeClock(100.0)
    s, col = await start_session(llm=FakeLLM(words("Sure, I can help with that.")), clock=clock)
    await say(s)
    # The whole reply (6 words, 18 frames) is synthesized and queued, and only the frames
    # heard within 60 ms of now (at 0, 20, 40 and 60 ms) were handed out.
    await until(lambda: len(col.of(AgentAudio)) + s._playout.queued_frames == 6 * 3)
    assert len(col.of(AgentAudio)) == 4
    await play_until(clock, col, 100.1, frames=18)
    assert len(col.of(AgentAudio)) == 9  # heard up to 100 ms, handed out up to 160 ms
    await play_until(clock, col, 100.34, frames=18)
    assert len(col.of(AgentAudio)) == 18 and col.of(AgentUtteranceEnd)
    assert not col.of(AgentReply)  # the last frame is heard at 360 ms
    clock.t = 100.361
    reply = await col.wait_for(AgentReply)
    assert reply.text == "Sure, I can help with that." and not reply.interrupted
    await s.hangup()


async def test_barge_in_on_a_fake_clock_keeps_exactly_the_words_heard() -> None:
    # The fake-clock twin of the barge-in test above: the caller hears 0.3 s of the reply
    # (15 of the first clause's 27 frames, 5 of its 9 words) and then talks over it.
    long_reply = "Our clinic is open from eight in the morning, until six in the evening. " * 3
    clock = FakeClock(100.0)
    s, col = await start_session(llm=FakeLLM(words(long_reply.strip())), clock=clock)
    await say(s)
    first = await col.wait_for(AgentAudio)
    await play_until(clock, col, 100.3, frames=len(long_reply.split()) * 3)
    assert len(col.of(AgentAudio)) == 19  # 15 heard, the rest within the 60 ms lead
    await feed(s, tone(400), pace=FAST)  # the clock stands still while the caller talks
    clear = await col.wait_for(ClearAudio)
    assert clear.utterance_id == first.utterance_id
    reply = await col.wait_for(AgentReply)
    assert reply.interrupted and reply.text == "Our clinic is open from"
    assert s.history[-1] == {"role": "assistant", "content": "Our clinic is open from"}
    assert s.transcript[-1].interrupted
    await s.hangup()


async def test_a_short_sound_while_the_agent_talks_is_not_a_turn() -> None:
    llm = FakeLLM(words("Our clinic is open from eight in the morning until six " * 2))
    s, col = await start_session(llm=llm)
    await say(s)
    await col.wait_for(AgentAudio)
    await feed(s, np.concatenate([tone(140), silence(400)]), pace=0.02)  # "uh-huh"
    reply = await col.wait_for(AgentReply)
    assert not reply.interrupted and not col.of(ClearAudio)
    assert len(llm.calls) == 1
    await s.hangup()


async def test_llm_down_says_the_fallback_line_and_logs_why(caplog) -> None:
    agent = make_agent(fallback_line="Sorry, one moment please.")
    s, col = await start_session(agent=agent, llm=FakeLLM(failing("connection refused")))
    with caplog.at_level(logging.WARNING):
        await say(s)
        reply = await col.wait_for(AgentReply)
    assert reply.text == "Sorry, one moment please."
    assert "connection refused" in caplog.text
    await s.hangup()


async def test_llm_empty_reply_says_the_fallback_line() -> None:
    s, col = await start_session(llm=FakeLLM([]))
    await say(s)
    reply = await col.wait_for(AgentReply)
    assert reply.text == make_agent().fallback_line
    await s.hangup()


async def test_llm_that_never_answers_times_out_to_the_fallback(caplog) -> None:
    async def hang():
        await asyncio.sleep(30)
        yield  # pragma: no cover

    agent = make_agent(llm=LLMConfig(first_token_timeout_s=0.3))
    s, col = await start_session(agent=agent, llm=FakeLLM(hang))
    with caplog.at_level(logging.WARNING):
        await say(s)
        reply = await col.wait_for(AgentReply)
    assert reply.text == agent.fallback_line
    assert "no token within 0.3 s" in caplog.text
    await s.hangup()


async def test_noise_without_speech_makes_no_llm_call() -> None:
    llm = FakeLLM(words("Should not be said."))
    s, col = await start_session(stt=FakeSTT(""), llm=llm)
    await say(s)
    await asyncio.sleep(0.3)
    assert llm.calls == []
    assert not col.of(TranscriptFinal) and not col.of(AgentAudio)
    # and the session still answers real speech afterwards
    s._reply.stt = FakeSTT("hello")
    await say(s)
    await col.wait_for(AgentReply)
    await s.hangup()


async def test_end_call_tool_hangs_up_after_the_goodbye_is_played() -> None:
    s, col = await start_session(llm=FakeLLM(end_call_reply("Goodbye, have a nice day!")))
    await say(s)
    ended = await col.wait_for(CallEnded)
    assert ended.reason == "agent_ended"
    reply = col.of(AgentReply)[0]
    assert reply.text == "Goodbye, have a nice day!" and not reply.interrupted
    assert [t.name for t in col.of(ToolInvoked)] == ["end_call"]
    assert col.events.index(reply) < col.events.index(ended)


async def test_max_duration_says_goodbye_and_ends() -> None:
    agent = make_agent(
        end_call=EndCallConfig(max_duration_s=0.5, goodbye_message="We are out of time, bye.")
    )
    _s, col = await start_session(agent=agent)
    ended = await col.wait_for(CallEnded, timeout=5)
    assert ended.reason == "max_duration"
    assert [r.text for r in col.of(AgentReply)] == ["We are out of time, bye."]


async def test_caller_silence_prompts_once_then_hangs_up() -> None:
    agent = make_agent(
        end_call=EndCallConfig(silence_timeout_s=0.4, silence_prompt="Are you still there?")
    )
    _s, col = await start_session(agent=agent)
    ended = await col.wait_for(CallEnded, timeout=5)
    assert ended.reason == "silence_timeout"
    assert [r.text for r in col.of(AgentReply)] == ["Are you still there?"]


async def test_dtmf_digits_become_a_caller_turn() -> None:
    llm = FakeLLM(words("Thanks, I found your booking."))
    s, col = await start_session(llm=llm)
    for d in "1234#":
        s.push_dtmf(d)
    await col.wait_for(AgentReply)
    assert [e.digits for e in col.of(DtmfReceived)] == list("1234#")
    assert "1234" in llm.calls[0][-1]["content"]
    with pytest.raises(ValueError, match="invalid DTMF"):
        s.push_dtmf("x")
    await s.hangup()


async def test_malformed_frames_are_rejected_and_the_call_goes_on() -> None:
    s, col = await start_session()
    with pytest.raises(FrameError, match="160 samples"):
        s.push_audio(np.zeros(160, np.int16))
    with pytest.raises(FrameError, match="NaN"):
        s.push_audio(np.full(320, np.nan, np.float32))
    await say(s)
    await col.wait_for(AgentReply)
    await s.hangup()


async def test_a_stage_that_keeps_failing_ends_only_its_own_call_after_the_fallback(
    caplog,
) -> None:
    broken_stt = FakeSTT()
    broken_stt.error = RuntimeError("model crashed")
    agent = make_agent(max_failed_turns=2, fallback_line="Sorry, say that again?")
    a, col_a = await start_session(agent=agent, stt=broken_stt)
    b, col_b = await start_session()
    with caplog.at_level(logging.WARNING):
        await asyncio.gather(say(a), say(b))
        # One failed turn is a glitch: the caller hears the fallback line, the call goes on.
        first = await col_a.wait_for(AgentReply)
        assert first.text == "Sorry, say that again?" and not a.ended.is_set()
        await say(a)
        ended = await col_a.wait_for(CallEnded)
    # Two in a row: the stage is down. The call ends, after the second fallback was heard.
    assert ended.reason == "error:stt:RuntimeError"
    replies = col_a.of(AgentReply)
    assert [r.text for r in replies] == ["Sorry, say that again?"] * 2
    assert col_a.events.index(replies[-1]) < col_a.events.index(ended)
    assert "model crashed" in caplog.text and "trying it again" in caplog.text
    await col_b.wait_for(AgentReply)
    assert not b.ended.is_set()
    await b.hangup()


async def test_welcome_message_is_spoken_first_and_in_history() -> None:
    s, col = await start_session(agent=make_agent(welcome_message="Hello, Bright Smile Dental."))
    reply = await col.wait_for(AgentReply)
    assert reply.text == "Hello, Bright Smile Dental."
    assert s.history[1] == {"role": "assistant", "content": "Hello, Bright Smile Dental."}
    assert s.transcript[0].speaker == "agent"
    await s.hangup()


async def test_the_llm_prompt_cache_is_warmed_at_call_start() -> None:
    llm = FakeLLM(words("Hi."))
    s, _ = await start_session(llm=llm)
    for _ in range(50):
        if llm.prewarms:
            break
        await asyncio.sleep(0.01)
    assert llm.prewarms == 1 and llm.calls == []
    await s.hangup()
