"""Answering-machine detection on real synthesized speech and generated tones."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.simulated.callee import synthesize
from tests.conftest import frames_of
from voice_core.answering_machine import DetectorConfig, MachineDetector, Verdict, is_tone
from voice_core.audio.frames import ENGINE_RATE
from voice_core.vad import WebRtcVad

GREETING = (
    "Hi, you have reached the Smith family. We cannot come to the phone right now, "
    "so please leave your name and number after the tone and we will call you back."
)


def tone(hz: float, ms: int, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(ENGINE_RATE * ms // 1000) / ENGINE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ENGINE_RATE * ms // 1000, dtype=np.int16)


def verdicts(audio: np.ndarray) -> list[tuple[Verdict, float]]:
    """Each verdict with the second of audio it came at, the VAD deciding what is speech."""
    vad, detector, out = WebRtcVad(2), MachineDetector(), []
    for i, frame in enumerate(frames_of(audio)):
        verdict = detector.push(frame, vad.is_speech(frame))
        if verdict is not None:
            out.append((verdict, round(i * 0.02, 2)))
    return out


async def test_a_machine_greeting_then_its_beep(engine) -> None:
    speech = await synthesize(engine.tts, GREETING)
    said = verdicts(np.concatenate([silence(300), speech, silence(400), tone(1000, 400)]))
    assert [v for v, _ in said] == [Verdict.MACHINE, Verdict.BEEP]
    machine_at, beep_at = (t for _, t in said)
    assert machine_at < 0.3 + speech.size / ENGINE_RATE  # decided while it still talks
    assert beep_at > 0.3 + speech.size / ENGINE_RATE  # the tone, not a vowel, is the beep


async def test_a_person_saying_hello_is_a_human(engine) -> None:
    hello = await synthesize(engine.tts, "Hello? This is Maria.")
    assert [v for v, _ in verdicts(np.concatenate([silence(300), hello, silence(1500)]))] == [
        Verdict.HUMAN
    ]


@pytest.mark.parametrize("hz", [440.0, 850.0, 1000.0, 1400.0, 2000.0])
def test_beeps_at_common_pitches_are_tones(hz: float) -> None:
    frame = tone(hz, 20)
    assert is_tone(frame, DetectorConfig()) is not None


@pytest.mark.parametrize(
    "audio",
    [
        np.random.default_rng(1).normal(0, 3000, 320).astype(np.int16),  # hiss
        (3000 * ((np.arange(320) * 150 / ENGINE_RATE) % 1.0 - 0.5)).astype(np.int16),  # buzz
        tone(1000, 20, amplitude=100),  # too quiet: line noise
        tone(100, 20),  # below the band
    ],
)
def test_noise_buzz_and_quiet_or_low_tones_are_no_beep(audio: np.ndarray) -> None:
    assert is_tone(audio, DetectorConfig()) is None


def test_a_tone_too_short_to_be_a_beep_is_ignored() -> None:
    detector = MachineDetector()
    audio = np.concatenate([tone(1000, 100), silence(200), tone(1000, 100)])
    assert [detector.push(f, False) for f in frames_of(audio)] == [None] * 20
    audio = tone(1000, 200)
    assert Verdict.BEEP in [detector.push(f, False) for f in frames_of(audio)]
