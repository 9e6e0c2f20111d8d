"""G.711 A-law, vectorised with numpy (``audioop`` is gone from Python 3.13).

The codec of European and most international phone lines (mu-law is North
America's and Japan's). ITU-T G.711 segment encoding on 13-bit samples with the
even bits inverted on the wire (XOR 0x55), as in the reference ``g711.c``.
"""

from __future__ import annotations

import numpy as np

# Upper end of each of the 8 segments, in 13-bit magnitude.
_SEGMENT_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (codes & 0x0F) << 4
    segment = (codes & 0x70) >> 4
    magnitude = np.where(
        segment == 0,
        mantissa + 8,
        (mantissa + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


_DECODE = _build_decode_table()


def decode(data: bytes) -> np.ndarray:
    """A-law bytes -> PCM16 samples (same count)."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode(samples: np.ndarray) -> bytes:
    """PCM16 samples -> A-law bytes (same count)."""
    x = samples.astype(np.int32) >> 3  # 13-bit
    positive = x >= 0
    mask = np.where(positive, 0xD5, 0x55)
    magnitude = np.where(positive, x, -x - 1)
    segment = np.searchsorted(_SEGMENT_END, magnitude)  # first end >= magnitude
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8).tobytes()
