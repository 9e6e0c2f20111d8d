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
    # The part of ``text`` that will not change (a partial's committed prefix); for a
    # final it is the whole text.
    committed: str = ""

    @property
    def is_speech(self) -> bool:
        """False for silence and noise.

        The provider decides (Whisper: its no-speech probability together with the
        decode's log-probability) and returns no text for what is not speech, so a
        confident short answer ("no", "bye") is never dropped for a high
        no-speech probability alone.
        """
        return bool(self.text.strip())


class SpeechToText(Protocol):
    async def transcribe(self, audio: np.ndarray) -> Transcription:
        """Transcribe a whole utterance: int16 mono at 16 kHz, any length.

        ``WhisperSTT.transcribe`` also takes ``prompt=`` (the agent's vocabulary) and
        ``WhisperSTT.stream()`` gives partials with a committed prefix; both optional.
        """
        ...
