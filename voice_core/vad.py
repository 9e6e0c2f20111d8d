"""Voice activity detection: webrtcvad on 20 ms frames, behind a tiny interface."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import webrtcvad

from voice_core.audio.frames import ENGINE_RATE


class VoiceDetector(Protocol):
    def is_speech(self, frame: np.ndarray) -> bool: ...


class WebRtcVad:
    """webrtcvad with an energy floor.

    webrtcvad alone fires on some steady noise; requiring a minimum RMS level
    (about -50 dBFS) removes near-silent line hiss cheaply.
    """

    def __init__(self, aggressiveness: int = 2, min_rms: float = 100.0) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._min_rms = min_rms

    def is_speech(self, frame: np.ndarray) -> bool:
        rms = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))
        if rms < self._min_rms:
            return False
        return self._vad.is_speech(frame.astype("<i2").tobytes(), ENGINE_RATE)
