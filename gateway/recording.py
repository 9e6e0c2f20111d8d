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

Streamed to disk (``stream_to``): once a second, whatever can no longer change is
appended to a ``WavStream`` and dropped from memory, so a process killed mid-call
leaves a playable file of the call so far, and a long call's memory stays flat.
Settled is everything before now on the agent side (a ``clear`` cuts at now, new
audio goes at now or later) and before the caller's cursor on the caller side (a
caller frame never lands before it), but at most ``CALLER_LAG_S`` behind now: a
caller frame later than that is placed after what is written, as an overlapping
one already is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gateway.wav_stream import WavStream
from voice_core.audio.wav import write_wav

RECORDING_RATE = 8000
_MAX_AHEAD = RECORDING_RATE  # caller timestamps may lead the wall clock by 1 s at most
FLUSH_S = 1.0  # how often settled audio goes to disk: what a kill can lose at most
CALLER_LAG_S = 2.0  # caller audio later than this behind the clock is placed after it


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

    def drop_before(self, position: int) -> None:
        """Forget what is before ``position`` (it is on disk); nothing may land there."""
        kept: list[tuple[int, np.ndarray]] = []
        for start, samples in self.segments:
            if start + samples.size <= position:
                continue
            if start < position:
                samples, start = samples[position - start :], position
            kept.append((start, samples))
        self.segments = kept
        self.cursor = max(self.cursor, position)

    def render(self, out: np.ndarray, start: int) -> None:
        """Mix this track's samples into ``out``, which covers [start, start + len)."""
        end = start + out.size
        for position, samples in self.segments:
            lo, hi = max(position, start), min(position + samples.size, end)
            if lo < hi:
                out[lo - start : hi - start] = samples[lo - position : hi - position]

    @property
    def length(self) -> int:
        return max((s + a.size for s, a in self.segments), default=0)


class StereoRecorder:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self.caller = _Track()
        self.agent = _Track()
        self._file: WavStream | None = None
        self._written = 0  # samples per channel already in the file
        self._flushed_at = 0  # on the recording's clock, in samples

    def _now(self) -> int:
        return round((self._clock() - self._t0) * RECORDING_RATE)

    def add_caller(self, samples: np.ndarray, timestamp_ms: int | None = None) -> None:
        now = self._now()
        position = now if timestamp_ms is None else timestamp_ms * RECORDING_RATE // 1000
        self.caller.put(min(position, now + _MAX_AHEAD), samples)
        self._maybe_flush(now)

    def add_agent(self, samples: np.ndarray) -> None:
        now = self._now()
        self.agent.put(now, samples)
        self._maybe_flush(now)

    def clear_agent(self) -> None:
        self.agent.cut(self._now())

    # ---------------------------------------------------------------- streaming

    @property
    def streaming(self) -> bool:
        return self._file is not None

    def stream_to(self, path: str | Path) -> Path:
        """From now on, write the recording to ``path`` as it is captured."""
        self._file = WavStream(path, channels=2, rate=RECORDING_RATE)
        return self._file.path

    def _maybe_flush(self, now: int) -> None:
        if self._file is not None and now - self._flushed_at >= FLUSH_S * RECORDING_RATE:
            self.flush(now)

    def flush(self, now: int | None = None, *, upto: int | None = None) -> None:
        """Append what is settled (or everything before ``upto``) to the file."""
        if self._file is None:
            return
        now = self._now() if now is None else now
        self._flushed_at = now
        if upto is None:
            lag = round(CALLER_LAG_S * RECORDING_RATE)
            upto = max(min(now, self.caller.cursor), now - lag)
        if upto <= self._written:
            return
        block = np.zeros((upto - self._written, 2), dtype=np.int16)
        for channel, track in enumerate((self.caller, self.agent)):
            column = np.zeros(upto - self._written, dtype=np.int16)
            track.render(column, self._written)
            track.drop_before(upto)
            block[:, channel] = column
        self._file.append(block.astype("<i2").tobytes())
        self._written = upto

    def finish(self) -> Path | None:
        """The call is over: write the rest, then the header's real sizes."""
        if self._file is None:
            return None
        self.flush(upto=max(self.caller.length, self.agent.length, self._written))
        file, self._file = self._file, None
        file.close()
        return file.path

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
