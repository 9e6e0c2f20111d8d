"""Smart Turn v3.2 on real recorded speech through the phone path (never synthesized)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.stt_accuracy import MissingSpeech, asterisk_prompts, phone_path

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def smart_turn():
    from voice_core.turn_detection.smart_turn import SmartTurn

    try:
        return SmartTurn()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def sentences():
    try:
        clips = [c for c in asterisk_prompts() if len(c.text.split()) >= 5]
    except MissingSpeech as exc:
        pytest.skip(str(exc))
    return clips[:40]


def speech_then_pause(clip) -> np.ndarray:
    audio = phone_path(clip.audio, clip.rate)
    loud = np.nonzero(np.abs(audio) > 500)[0]
    audio = audio[: loud[-1] + 1]
    return np.concatenate([audio, np.zeros(int(0.16 * 16000), np.int16)])  # the pause it sees


def test_finished_sentences_are_heard_as_complete(smart_turn, sentences) -> None:
    probabilities = [smart_turn.probability(speech_then_pause(c)) for c in sentences]
    complete = sum(p >= 0.5 for p in probabilities) / len(probabilities)
    assert complete >= 0.9, list(zip([c.name for c in sentences], probabilities, strict=True))


def test_any_length_is_judged_on_its_last_eight_seconds(smart_turn, sentences) -> None:
    long = np.concatenate([speech_then_pause(c) for c in sentences[:6]])
    assert long.size / 16000 > 8
    tail = long[-8 * 16000 :]
    assert abs(smart_turn.probability(long) - smart_turn.probability(tail)) < 1e-4
    assert 0.0 <= smart_turn.probability(np.zeros(160, np.int16)) <= 1.0  # a blip, no error
