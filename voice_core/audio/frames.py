"""The engine's one audio format, and checks that input really is in it."""

from __future__ import annotations

import numpy as np

ENGINE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = ENGINE_RATE * FRAME_MS // 1000  # 320


class FrameError(ValueError):
    """A caller frame that is not 20 ms of mono PCM16 at 16 kHz."""


def validate_frame(frame: object) -> np.ndarray:
    """Return ``frame`` as a 320-sample int16 array, or raise FrameError saying why.

    Float input is accepted (range -1..1) because some transports decode to float;
    NaN/inf samples are rejected rather than silently becoming loud clicks.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        if len(frame) != FRAME_SAMPLES * 2:
            raise FrameError(
                f"frame has {len(frame)} bytes, expected {FRAME_SAMPLES * 2} "
                f"(20 ms of PCM16 at {ENGINE_RATE} Hz)"
            )
        return np.frombuffer(bytes(frame), dtype="<i2").copy()
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array or bytes, not {type(frame).__name__}")
    if frame.ndim != 1:
        raise FrameError(f"frame must be mono (1-D), got shape {frame.shape}")
    if frame.shape[0] != FRAME_SAMPLES:
        raise FrameError(
            f"frame has {frame.shape[0]} samples, expected {FRAME_SAMPLES} "
            f"(20 ms at {ENGINE_RATE} Hz)"
        )
    if frame.dtype == np.int16:
        return frame
    if np.issubdtype(frame.dtype, np.floating):
        if not np.all(np.isfinite(frame)):
            raise FrameError("frame contains NaN or infinite samples")
        return float_to_pcm16(frame)
    raise FrameError(f"frame dtype must be int16 or float, not {frame.dtype}")


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return (clipped * 32767.0).astype(np.int16)


def pcm16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


class Framer:
    """Cuts a stream of arbitrary-length chunks into whole frames of ``size`` samples."""

    def __init__(self, size: int = FRAME_SAMPLES) -> None:
        self.size = size
        self._pending = np.zeros(0, dtype=np.int16)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = buf.shape[0] // self.size
        frames = [buf[i * self.size : (i + 1) * self.size] for i in range(n)]
        self._pending = buf[n * self.size :].copy()
        return frames

    def flush(self) -> list[np.ndarray]:
        """The remainder, zero-padded to a whole frame (nothing if empty)."""
        if not self._pending.size:
            return []
        last = np.zeros(self.size, dtype=np.int16)
        last[: self._pending.size] = self._pending
        self._pending = np.zeros(0, dtype=np.int16)
        return [last]
