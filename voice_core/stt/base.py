from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Transcription:
    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compute_ms: float = 0.0

    @property
    def is_speech(self) -> bool:
        """False for silence/noise that the model turned into filler text."""
        return bool(self.text.strip()) and self.no_speech_prob < 0.6


class SpeechToText(Protocol):
    async def transcribe(self, audio: np.ndarray) -> Transcription:
        """Transcribe a whole utterance: int16 mono at 16 kHz."""
        ...
