"""The session asks the end-of-turn detector at the speculative pause and waits as long
as it says. Fakes for the models; the endpointer counts frames, so no timing asserts."""

from __future__ import annotations

import numpy as np

from tests.conftest import feed, silence
from tests.voice_core.fakes import FakeLLM, tone, words
from tests.voice_core.test_session import FAST, make_agent, start_session
from voice_core.config import EndpointingConfig
from voice_core.events import AgentReply, TurnMetrics


class FixedDetector:
    def __init__(self, probability: float | Exception) -> None:
        self.probability = probability
        self.asked: list[int] = []

    async def judge(self, audio: np.ndarray) -> float:
        self.asked.append(audio.size)
        if isinstance(self.probability, Exception):
            raise self.probability
        return self.probability


def model_agent():
    return make_agent(
        endpointing=EndpointingConfig(
            mode="model",
            speech_start_ms=40,
            speculative_silence_ms=100,
            end_of_turn_silence_ms=300,
            complete_silence_ms=120,
            incomplete_silence_ms=1200,
            interruption_min_speech_ms=200,
            min_utterance_ms=100,
        )
    )


async def test_a_complete_turn_ends_on_the_models_word_and_the_log_says_so() -> None:
    detector = FixedDetector(0.95)
    s, col = await start_session(agent=model_agent(), turn_detector=detector)
    await feed(s, np.concatenate([tone(400), silence(600)]), FAST)
    metrics = await col.wait_for(TurnMetrics)
    assert metrics.end_of_turn == "model: complete (0.95)"
    assert detector.asked and detector.asked[0] > 0  # it heard the turn's audio
    await s.hangup()


async def test_a_pause_mid_sentence_is_not_the_end_of_the_turn() -> None:
    # 600 ms of silence inside the turn: the fixed 300 ms would have cut it in two.
    llm = FakeLLM(words("Got it."))
    s, col = await start_session(agent=model_agent(), llm=llm, turn_detector=FixedDetector(0.05))
    await feed(s, np.concatenate([tone(400), silence(600), tone(400), silence(1500)]), FAST)
    await col.wait_for(AgentReply)
    # One turn: one caller entry in the history (the reply speculated at the pause was
    # discarded unheard when the caller went on).
    assert [m["role"] for m in s.history] == ["system", "user", "assistant"]
    assert col.of(TurnMetrics)[0].end_of_turn == "model: incomplete (0.05)"
    await s.hangup()


async def test_a_failing_detector_falls_back_to_the_fixed_silence() -> None:
    s, col = await start_session(
        agent=model_agent(), turn_detector=FixedDetector(RuntimeError("onnx"))
    )
    await feed(s, np.concatenate([tone(400), silence(600)]), FAST)
    await col.wait_for(AgentReply)
    assert (await col.wait_for(TurnMetrics)).end_of_turn.startswith("silence")
    await s.hangup()


async def test_silence_mode_never_asks_the_model() -> None:
    detector = FixedDetector(0.95)
    agent = model_agent()
    agent.endpointing.mode = "silence"
    s, col = await start_session(agent=agent, turn_detector=detector)
    await feed(s, np.concatenate([tone(400), silence(600)]), FAST)
    assert (await col.wait_for(TurnMetrics)).end_of_turn == "silence"
    assert detector.asked == []
    await s.hangup()
