"""Text-to-speech providers. The engine sees only :class:`TextToSpeech`."""

from voice_core.tts.base import TextToSpeech

__all__ = ["TextToSpeech"]
