"""Inbound media bounded by wall-clock time: a caller cannot send faster than real time.

A live line delivers audio at the rate it is spoken, with some jitter (a carrier may
batch a few frames, a network hiccup delivers a second at once). ``MediaBudget``
allows that much (``burst_s``) ahead of the wall clock and no more, so a socket
cannot push minutes of audio in seconds into the engine and the recorder.
Sans-I/O: seconds of audio in, a verdict out, on an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MediaBudget:
    def __init__(self, burst_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst_s = burst_s
        self._clock = clock
        self._t0 = clock()
        self.received_s = 0.0

    @property
    def ahead_s(self) -> float:
        """Seconds of audio received beyond the wall-clock time since the start."""
        return self.received_s - (self._clock() - self._t0)

    def take(self, seconds: float) -> bool:
        """Count ``seconds`` of audio; False once the caller is more than ``burst_s`` ahead."""
        self.received_s += seconds
        return self.ahead_s <= self.burst_s
