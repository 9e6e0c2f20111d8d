"""Audio formats at the engine's edges: mu-law, resampling, framing, WAV.

Inside the engine audio is always mono PCM16 (numpy int16) at 16 kHz in 20 ms
frames; every conversion to or from a transport's format lives in this package.
"""

from voice_core.audio.frames import (
    ENGINE_RATE,
    FRAME_MS,
    FRAME_SAMPLES,
    FrameError,
    Framer,
    validate_frame,
)

__all__ = ["ENGINE_RATE", "FRAME_MS", "FRAME_SAMPLES", "FrameError", "Framer", "validate_frame"]
