"""The Asterisk formats a WebSocket channel can carry to voxline, and their codecs.

The format is the one named in the dial string (``c(slin16)``, ``c(ulaw)``) or ARI's
``format=``, and ``MEDIA_START`` reports it by Asterisk's format name. Signed linear
travels in Asterisk's internal byte order, little-endian on every platform Asterisk
ships for. Variable-rate codecs (opus, and anything that needs passthrough mode) are
refused: voxline needs media it can cut at any byte boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voice_core.audio import mulaw


@dataclass(frozen=True)
class MediaFormat:
    name: str  # Asterisk's format name
    sample_rate: int
    sample_bytes: int  # 1 for G.711, 2 for signed linear

    @property
    def frame_bytes(self) -> int:
        """Bytes in 20 ms, Asterisk's ``optimal_frame_size`` for this format."""
        return self.sample_rate // 50 * self.sample_bytes

    def decode(self, data: bytes) -> np.ndarray:
        """Wire bytes -> int16 samples at ``sample_rate``."""
        if self.name == "ulaw":
            return mulaw.decode(data)
        if self.name == "alaw":
            from voice_core.audio import alaw  # only calls that dial c(alaw) need it

            return alaw.decode(data)
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def encode(self, samples: np.ndarray) -> bytes:
        """int16 samples at ``sample_rate`` -> wire bytes."""
        if self.name == "ulaw":
            return mulaw.encode(samples)
        if self.name == "alaw":
            from voice_core.audio import alaw

            return alaw.encode(samples)
        return samples.astype("<i2").tobytes()


_SLIN_RATES = {
    "slin": 8000,
    "slin12": 12000,
    "slin16": 16000,
    "slin24": 24000,
    "slin32": 32000,
    "slin44": 44100,
    "slin48": 48000,
    "slin96": 96000,
    "slin192": 192000,
}

FORMATS: dict[str, MediaFormat] = {
    "ulaw": MediaFormat("ulaw", 8000, 1),
    "alaw": MediaFormat("alaw", 8000, 1),
    **{name: MediaFormat(name, rate, 2) for name, rate in _SLIN_RATES.items()},
}
