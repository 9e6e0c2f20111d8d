"""Speech-to-text providers. The engine sees only :class:`SpeechToText`."""

from voice_core.stt.base import SpeechToText, Transcription

__all__ = ["SpeechToText", "Transcription"]
