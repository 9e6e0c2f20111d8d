"""Audio between aiortc and the engine.

- ``CallerAudio``: decoded aiortc frames (Opus 48 kHz, mono or stereo, any
  sample format) -> 20 ms int16 mono 16 kHz frames for ``CallSession``.
- ``AgentAudioTrack``: a ``MediaStreamTrack`` aiortc pulls 20 ms 48 kHz frames
  from, on a real-time clock; silence when the agent has nothing to say (RTP
  must keep flowing, and a gap would read as a dead line), queued audio dropped
  at once on barge-in.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from voice_core.audio import FRAME_SAMPLES, Framer
from voice_core.audio.resample import StreamResampler

ENGINE_RATE = 16000
WEBRTC_RATE = 48000
PTIME_S = 0.020
WEBRTC_FRAME = int(WEBRTC_RATE * PTIME_S)  # 960 samples
# The engine paces agent audio at most ~120 ms ahead; this bound only matters if
# it ever runs further ahead (2 s), and then the oldest audio goes, not memory.
MAX_QUEUED_FRAMES = 100
# After a stall (a busy event loop) longer than this, restart the clock instead of
# sending a burst of frames to catch up: a burst would only overflow the jitter buffer.
MAX_LATE_S = 0.2


class CallerAudio:
    """One per call: the resampler keeps filter state between frames."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=ENGINE_RATE)
        self._framer = Framer(FRAME_SAMPLES)

    def push(self, frame: AudioFrame) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for converted in self._resampler.resample(frame):
            pcm = converted.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            out.extend(self._framer.push(pcm))
        return out


class AgentAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[np.ndarray] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._resampler = StreamResampler(ENGINE_RATE, WEBRTC_RATE)
        self._framer = Framer(WEBRTC_FRAME)
        self._start: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.voiced_frames_sent = 0
        self.first_voiced_at: float | None = None  # time.monotonic of first non-silent frame

    # ---------------------------------------------------------------- producer side

    def push(self, pcm16k: np.ndarray) -> None:
        """Queue one 20 ms engine frame (int16 mono 16 kHz)."""
        for frame in self._framer.push(self._resampler.push(pcm16k)):
            self._queue.append(frame)

    def end_utterance(self) -> None:
        """Flush the resampler's tail so an utterance's last few ms are not held back."""
        tail = self._resampler.flush()
        self._resampler = StreamResampler(ENGINE_RATE, WEBRTC_RATE)
        for frame in self._framer.push(tail):
            self._queue.append(frame)
        for frame in self._framer.flush():
            self._queue.append(frame)

    def clear(self) -> None:
        """Barge-in: what is queued will never be heard."""
        self._queue.clear()
        self._resampler = StreamResampler(ENGINE_RATE, WEBRTC_RATE)
        self._framer = Framer(WEBRTC_FRAME)

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------- aiortc side

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._pts += WEBRTC_FRAME
            due = self._start + self._pts / WEBRTC_RATE
            if now - due > MAX_LATE_S:
                self._start = now - self._pts / WEBRTC_RATE
            elif due > now:
                await asyncio.sleep(due - now)
        if self._queue:
            pcm = self._queue.popleft()
            self.voiced_frames_sent += 1
            if self.first_voiced_at is None:
                self.first_voiced_at = time.monotonic()
        else:
            pcm = np.zeros(WEBRTC_FRAME, dtype=np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE)
        self.frames_sent += 1
        return frame
