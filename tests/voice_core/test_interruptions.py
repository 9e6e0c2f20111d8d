"""Speech over the agent through a whole session (fakes): backchannels and false
interruptions let the utterance go on, a real interruption stops it for good."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.conftest import feed, silence
from tests.voice_core.fakes import (
    Collector,
    FakeLLM,
    FakeTTS,
    FakeVad,
    tone,
    words,
)
from tests.voice_core.test_session import make_agent, say
from voice_core.config import EndpointingConfig
from voice_core.events import AgentAudio, AgentReply, ClearAudio, TranscriptFinal, TurnMetrics
from voice_core.session import CallSession
from voice_core.stt.base import Transcription

LONG_REPLY = "Our clinic is open from eight in the morning, until six in the evening. " * 3


class CallerSTT:
    """Hears what the test says the caller is saying (``saying``), after ``delay`` s."""

    def __init__(self, first_turn: str = "When are you open?") -> None:
        self.saying = first_turn
        self.delay = 0.01
        self.heard: list[str] = []

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        await asyncio.sleep(self.delay)
        self.heard.append(self.saying)
        return Transcription(self.saying, no_speech_prob=0.9 if not self.saying else 0.01)


async def agent_talking(stt: CallerSTT, llm: FakeLLM | None = None, **agent):
    llm = llm or FakeLLM(words(LONG_REPLY.strip()), words("On Saturday we open at nine."))
    s = CallSession(
        make_agent(**agent),
        stt=stt,
        llm=llm,
        tts=FakeTTS(),
        vad=FakeVad(),
        call_id="t",
        playout_lead_ms=60,
    )
    col = Collector(s)
    await s.start()
    await say(s)
    first = await col.wait_for(AgentAudio)
    await asyncio.sleep(0.3)  # the caller hears a little of the reply first
    return s, col, llm, first.utterance_id


def frames_of(col: Collector, utterance_id: int, after: object) -> int:
    idx = col.events.index(after)
    return sum(
        1 for e in col.events[idx:] if isinstance(e, AgentAudio) and e.utterance_id == utterance_id
    )


async def test_a_backchannel_pauses_the_agent_briefly_and_the_utterance_completes() -> None:
    stt = CallerSTT()
    s, col, llm, utt_id = await agent_talking(stt)
    stt.saying = "Uh-huh."
    await feed(s, np.concatenate([tone(300), silence(600)]), pace=0.02)
    clear = await col.wait_for(ClearAudio)  # it did stop while the words were checked
    reply = await col.wait_for(AgentReply, timeout=15)
    assert not reply.interrupted and reply.text == LONG_REPLY.strip()
    assert frames_of(col, utt_id, clear) > 0  # and went on after the pause
    assert [o.outcome for o in s.overlaps] == ["resumed"]
    assert "backchannel" in s.overlaps[0].why
    # The "uh-huh" was not a turn: no second reply, nothing of it in the history.
    assert len(llm.calls) == 1
    assert [f.text for f in col.of(TranscriptFinal)] == ["When are you open?"]
    assert s.history[-1] == {"role": "assistant", "content": LONG_REPLY.strip()}
    await s.hangup()


async def test_a_real_interruption_stops_the_agent_and_keeps_what_was_heard() -> None:
    stt = CallerSTT()
    s, col, _llm, utt_id = await agent_talking(stt)
    stt.saying = "Sorry, what time on Saturday?"
    await feed(s, np.concatenate([tone(700), silence(600)]), pace=0.02)
    clear = await col.wait_for(ClearAudio)
    assert clear.utterance_id == utt_id
    cut = await col.wait_for(AgentReply, lambda r: r.interrupted)
    heard = cut.text.split()
    assert 0 < len(heard) < len(LONG_REPLY.split())
    assert LONG_REPLY.split()[: len(heard)] == heard
    assert frames_of(col, utt_id, clear) == 0  # nothing more of the cut utterance
    assert [o.outcome for o in s.overlaps] == ["interrupted"]
    # The interruption is the caller's next turn, answered after what was heard.
    answer = await col.wait_for(AgentReply, lambda r: "Saturday" in r.text)
    assert not answer.interrupted
    roles = [(m["role"], m["content"]) for m in s.history[1:]]
    assert roles == [
        ("user", "When are you open?"),
        ("assistant", cut.text),
        ("user", "Sorry, what time on Saturday?"),
        ("assistant", "On Saturday we open at nine."),
    ]
    assert len(col.of(ClearAudio)) == 1
    await s.hangup()


async def test_a_cough_pauses_the_agent_and_it_resumes_from_a_little_before() -> None:
    stt = CallerSTT()
    s, col, llm, utt_id = await agent_talking(stt)
    stt.saying = ""  # the STT hears no speech in it
    await feed(s, np.concatenate([tone(260, amplitude=12000), silence(600)]), pace=0.02)
    clear = await col.wait_for(ClearAudio)
    reply = await col.wait_for(AgentReply, timeout=15)
    assert not reply.interrupted and reply.text == LONG_REPLY.strip()
    [overlap] = s.overlaps
    assert overlap.outcome == "resumed" and "false interruption" in overlap.why
    assert overlap.resumed_from_ms is not None and overlap.resumed_from_ms > 0
    assert frames_of(col, utt_id, clear) > 0
    assert len(llm.calls) == 1 and s.transcript[-1].text == LONG_REPLY.strip()
    await s.hangup()


async def test_a_short_interruption_judged_after_the_callers_turn_ended_is_answered() -> None:
    # The transcript is slow (0.6 s): the caller's turn ends (300 ms of silence) while the
    # agent is still paused; once the words say "interruption", that turn is answered.
    stt = CallerSTT()
    s, col, llm, _ = await agent_talking(stt)
    stt.saying, stt.delay = "Stop.", 0.6
    await feed(s, np.concatenate([tone(300), silence(900)]), pace=0.02)
    await col.wait_for(AgentReply, lambda r: r.interrupted)
    await col.wait_for(AgentReply, lambda r: "Saturday" in r.text, timeout=15)
    assert llm.calls[-1][-1] == {"role": "user", "content": "Stop."}
    await s.hangup()


class SureDetector:
    async def judge(self, audio: np.ndarray) -> float:
        return 0.9


async def test_model_mode_ignores_a_partial_that_stops_short_of_the_pause() -> None:
    # The only partial is decoded ~300 ms into a 600 ms utterance and reads "I would like
    # to": stale at the pause, so the words must not hold the turn open as incomplete.
    stt = CallerSTT("I would like to")
    cfg = make_agent().endpointing.model_dump()
    cfg["mode"] = "model"
    s = CallSession(
        make_agent(endpointing=EndpointingConfig(**cfg)),
        stt=stt,
        llm=FakeLLM(words("Sure.")),
        tts=FakeTTS(),
        vad=FakeVad(),
        call_id="t",
        turn_detector=SureDetector(),
    )
    col = Collector(s)
    await s.start()
    await feed(s, np.concatenate([tone(600), silence(1500)]), pace=0.02)
    metrics = await col.wait_for(TurnMetrics)
    assert metrics.end_of_turn.startswith("model: complete")
    await s.hangup()
