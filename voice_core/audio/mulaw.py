"""G.711 mu-law, vectorised with numpy (``audioop`` is gone from Python 3.13).

Implements the ITU-T G.711 segment encoding with the 0x84 bias and the bit
inversion on the wire, the same tables carriers use.
"""

from __future__ import annotations

import numpy as np

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    sign = inverted & 0x80
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_DECODE = _build_decode_table()


def _build_encode_table() -> np.ndarray:
    # Indexed by the biased magnitude >> 7 (0..255): the segment (exponent) of each.
    idx = np.arange(256)
    exp = np.zeros(256, dtype=np.int32)
    for e in range(1, 8):
        exp[idx >= (1 << e)] = e
    return exp


_EXPONENT = _build_encode_table()


def decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> PCM16 samples (same count)."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode(samples: np.ndarray) -> bytes:
    """PCM16 samples -> mu-law bytes (same count)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = _EXPONENT[(magnitude >> 7) & 0xFF]
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return code.astype(np.uint8).tobytes()
