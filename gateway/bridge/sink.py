"""What the bridge needs from a transport: where the agent's audio goes, and how to stop.

Modelled on LiveKit Agents' ``AudioOutput``: a transport is a sink for 20 ms
frames that can drop what it has queued (barge-in), be told where an utterance
ends, and say how much it still has to play. How the frames are encoded,
paced or acknowledged (phone marks, an RTP track) is the transport's business.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from voice_core.end_reasons import CallEnd


class MediaSink(Protocol):
    async def play(self, pcm: np.ndarray) -> None:
        """Queue one engine frame (int16 mono 16 kHz, 20 ms) for the caller to hear."""
        ...

    async def clear(self) -> None:
        """Barge-in: drop every frame not yet heard."""
        ...

    async def end_utterance(self, utterance_id: int) -> None:
        """The utterance's last frame has been played: flush what is held back."""
        ...

    @property
    def queued_s(self) -> float:
        """Seconds of agent audio handed over but (as far as the sink knows) not yet heard."""
        ...

    async def wait_for_playout(self) -> None:
        """Return once what is queued has been heard (the bridge bounds the wait)."""
        ...


class CallTransport(Protocol):
    async def stop_media(self, end: CallEnd) -> None:
        """The call is over (``end`` says why): stop the media pumps, before the
        record is written."""
        ...

    async def close(self, end: CallEnd) -> None:
        """Close the connection: after the record is final, or at once when the call
        is hung up before its engine session started. Called again it does nothing."""
        ...
