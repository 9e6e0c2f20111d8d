from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np


class TextToSpeech(Protocol):
    def synthesize(self, text: str, *, length_scale: float = 1.0) -> AsyncIterator[np.ndarray]:
        """Speak ``text``: int16 mono chunks at 16 kHz, the first as early as possible.

        Empty or unspeakable text yields nothing (it is not an error).
        """
        ...
