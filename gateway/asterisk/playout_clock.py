"""When a far end that plays in real time will have played what we sent it.

Asterisk's WebSocket channel and FreeSWITCH's ``playAudio`` queue the agent's audio and
play it at the line's pace, but say little or nothing about how far they have got. A
sans-I/O clock answers the bridge's two questions (``queued_s``, and "is it all heard
yet") from what was sent and when: every second sent plays after the previous one, or
now if the far end had run dry. A barge-in (``clear``) drops the rest at once.

Transport-neutral: the Asterisk and FreeSWITCH transports both use it (a candidate for
``gateway.bridge`` alongside ``MediaSink``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PlayoutClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = clock()  # when the last second sent will have played

    def sent(self, seconds: float) -> None:
        """``seconds`` of audio were handed to the far end just now."""
        self._until = max(self._until, self._clock()) + seconds

    def clear(self) -> None:
        """The far end dropped what it had queued (barge-in)."""
        self._until = self._clock()

    @property
    def queued_s(self) -> float:
        """Seconds still to play (0 once the far end has played everything)."""
        return max(0.0, self._until - self._clock())
