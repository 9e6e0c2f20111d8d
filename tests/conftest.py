"""Shared fixtures: one real engine (models load once per test run) and audio helpers."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from voice_core.audio.frames import FRAME_SAMPLES
from voice_core.config import EngineSettings
from voice_core.engine import VoiceEngine


@pytest.fixture(scope="session")
async def engine() -> VoiceEngine:
    eng = VoiceEngine(EngineSettings(_env_file=None))
    await eng.start()
    return eng


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    """Whole 20 ms frames (the tail zero-padded)."""
    pad = (-samples.size) % FRAME_SAMPLES
    padded = np.concatenate([samples.astype(np.int16), np.zeros(pad, dtype=np.int16)])
    return [padded[i : i + FRAME_SAMPLES] for i in range(0, padded.size, FRAME_SAMPLES)]


def silence(ms: int) -> np.ndarray:
    return np.zeros(16 * ms, dtype=np.int16)


async def feed(session, samples: np.ndarray, pace: float = 0.02) -> None:
    """Push audio into a session frame by frame, ``pace`` seconds apart (0.02 = real time)."""
    for frame in frames_of(samples):
        session.push_audio(frame)
        await asyncio.sleep(pace)


@pytest.fixture(autouse=True)
def _quiet_httpx() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
