"""How long the engine waits for more speech: the endpointer with a verdict, the words,
the model's probability. Plain lists and strings, no clock."""

from __future__ import annotations

import pytest

from voice_core.config import EndpointingConfig
from voice_core.endpointing import Endpointer, SpeechPaused, TurnEnded
from voice_core.turn_detection.policy import decide
from voice_core.turn_detection.text_hints import incomplete, plainly_complete

CFG = EndpointingConfig(mode="model")


def speak_then_pause(ep: Endpointer, voiced_ms: int = 600) -> list[object]:
    events: list[object] = []
    for _ in range(voiced_ms // 20):
        events += ep.push(True)
    for _ in range(CFG.speculative_silence_ms // 20):
        events += ep.push(False)
    return events


def silence_until_end(ep: Endpointer, limit_ms: int = 3000) -> tuple[int, TurnEnded]:
    for k in range(1, limit_ms // 20):
        for ev in ep.push(False):
            if isinstance(ev, TurnEnded):
                return k * 20, ev
    raise AssertionError("the turn never ended")


def test_a_complete_verdict_ends_the_turn_early_and_says_why() -> None:
    ep = Endpointer(CFG)
    assert isinstance(speak_then_pause(ep)[-1], SpeechPaused)
    assert ep.adapt(ep.pause_no, 200, "model: complete (0.93)")
    waited, ended = silence_until_end(ep)
    assert CFG.speculative_silence_ms + waited == 200  # the verdict's wait, not 500 ms
    assert ended.why == "model: complete (0.93)"


def test_an_incomplete_verdict_waits_longer_than_the_fixed_silence() -> None:
    ep = Endpointer(CFG)
    speak_then_pause(ep)
    ep.adapt(ep.pause_no, 1500, "text: a value comes next")
    waited, ended = silence_until_end(ep)
    assert CFG.speculative_silence_ms + waited > CFG.end_of_turn_silence_ms
    assert ended.why.startswith("text:")


def test_a_verdict_for_an_older_pause_changes_nothing() -> None:
    ep = Endpointer(CFG)
    speak_then_pause(ep)
    stale = ep.pause_no
    speak_then_pause(ep)  # the caller went on and paused again
    assert not ep.adapt(stale, 200, "model: complete")
    _, ended = silence_until_end(ep)
    assert ended.why == "silence"


def test_speech_after_a_verdict_drops_it() -> None:
    ep = Endpointer(CFG)
    speak_then_pause(ep)
    ep.adapt(ep.pause_no, 1500, "model: incomplete (0.10)")
    speak_then_pause(ep, 200)
    _, ended = silence_until_end(ep)
    assert ended.why == "silence"


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a cleaning and",
        "my number is",
        "My phone number is, ",
        "It's 5 5 5 0 1",
        "I was wondering if",
        "um",
    ],
)
def test_words_that_say_the_caller_is_not_done(text: str) -> None:
    assert incomplete(text)
    verdict = decide(CFG, 0.97, text)  # they overrule a confident model
    assert not verdict.complete and verdict.silence_ms == CFG.incomplete_silence_ms


@pytest.mark.parametrize(
    "text", ["Thank you, goodbye.", "Yes.", "Can I book for Tuesday?", "Yes it is.", "Seven."]
)
def test_words_that_are_plainly_done(text: str) -> None:
    assert incomplete(text) is None and plainly_complete(text)


def test_the_model_decides_the_rest() -> None:
    assert decide(CFG, 0.9, "").complete
    assert decide(CFG, 0.9, "").silence_ms == CFG.complete_silence_ms
    low = decide(CFG, 0.1, "")
    assert not low.complete and low.silence_ms == CFG.incomplete_silence_ms
    # A plainly finished sentence needs less confidence from the model.
    assert decide(CFG, CFG.complete_threshold * 0.6, "That's all, thanks.").complete
    # Without a model the wait stays the fixed silence.
    assert decide(CFG, None, "Thanks.").silence_ms == CFG.end_of_turn_silence_ms
