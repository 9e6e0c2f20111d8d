"""WAV helpers (stdlib ``wave``): read a caller file, write recordings."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voice_core.audio.resample import resample


def read_wav(path: str | Path, rate: int) -> np.ndarray:
    """Read a PCM16 WAV as mono int16 at ``rate`` (channels averaged, resampled)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels = w.getnchannels()
        src_rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return resample(data, src_rate, rate)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write int16 samples; a 2-D (n, channels) array becomes a multi-channel file."""
    samples = np.asarray(samples, dtype=np.int16)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
