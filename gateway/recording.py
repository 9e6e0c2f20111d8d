"""One stereo WAV per call: caller on the left, agent on the right, on one clock.

Recorded at 8 kHz, the phone line's own rate: both sides are exactly what
crossed the wire (the caller's decoded mu-law, the agent audio as sent), nothing
above 4 kHz exists on a phone call, and the file is half the size of 16 kHz.

Each side is placed on the call's timeline, so silence fills any gap:
- caller audio at the carrier's media ``timestamp`` (ms since stream start),
  never overlapping what came before and never ahead of the wall clock by more
  than a second (a bogus timestamp cannot make a huge file);
- agent audio where the carrier will play it: right after the previous frame
  if that is still playing, else now. A ``clear`` cuts the agent side at now,
  because the carrier drops what it had buffered and the caller never hears it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voice_core.audio.wav import write_wav

RECORDING_RATE = 8000
_MAX_AHEAD = RECORDING_RATE  # caller timestamps may lead the wall clock by 1 s at most


class _Track:
    def __init__(self) -> None:
        self.segments: list[tuple[int, np.ndarray]] = []  # (start sample, samples)
        self.cursor = 0  # end of the last segment

    def put(self, position: int, samples: np.ndarray) -> None:
        position = max(position, self.cursor)
        self.segments.append((position, samples.astype(np.int16, copy=True)))
        self.cursor = position + samples.size

    def cut(self, position: int) -> None:
        kept: list[tuple[int, np.ndarray]] = []
        for start, samples in self.segments:
            if start >= position:
                continue
            if start + samples.size > position:
                samples = samples[: position - start]
            kept.append((start, samples))
        self.segments = kept
        self.cursor = min(self.cursor, position)

    @property
    def length(self) -> int:
        return max((s + a.size for s, a in self.segments), default=0)


class StereoRecorder:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self.caller = _Track()
        self.agent = _Track()

    def _now(self) -> int:
        return round((self._clock() - self._t0) * RECORDING_RATE)

    def add_caller(self, samples: np.ndarray, timestamp_ms: int | None = None) -> None:
        now = self._now()
        position = now if timestamp_ms is None else timestamp_ms * RECORDING_RATE // 1000
        self.caller.put(min(position, now + _MAX_AHEAD), samples)

    def add_agent(self, samples: np.ndarray) -> None:
        self.agent.put(self._now(), samples)

    def clear_agent(self) -> None:
        self.agent.cut(self._now())

    def stereo(self) -> np.ndarray:
        n = max(self.caller.length, self.agent.length)
        out = np.zeros((n, 2), dtype=np.int16)
        for channel, track in enumerate((self.caller, self.agent)):
            for start, samples in track.segments:
                out[start : start + samples.size, channel] = samples
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        write_wav(path, self.stereo(), RECORDING_RATE)
        return path
