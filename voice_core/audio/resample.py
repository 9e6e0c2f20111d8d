"""Sample-rate conversion with libsoxr (a proper anti-aliasing filter).

``StreamResampler`` keeps the filter state between chunks, so a stream cut into
20 ms pieces resamples exactly like the whole signal would, with no clicks at
chunk edges. ``resample`` is the one-shot form for whole buffers.
"""

from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole int16 buffer."""
    if in_rate == out_rate or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    return soxr.resample(samples.astype(np.int16, copy=False), in_rate, out_rate, quality="HQ")


class StreamResampler:
    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._passthrough = in_rate == out_rate
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(in_rate, out_rate, 1, "int16", quality)
        )

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = samples.astype(np.int16, copy=False)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)

    def flush(self) -> np.ndarray:
        return self.push(np.zeros(0, dtype=np.int16), last=True)
