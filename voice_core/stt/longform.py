"""Any length of speech: 30 s windows one after another, each starting where the last one's
speech ended (Whisper's own long-form method), never an exception.

A window that is not the last is a full 30 s: the decoder reads timestamps to
the end of it. The next window starts at the end of the last segment that the
decoder closed; a segment cut off by the window edge is decoded again in the
next window instead of being kept half-heard. What was heard so far is the
prompt of the next window, so names and spelling stay the same across windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voice_core.stt.decoding import (
    FINAL,
    SAMPLE_RATE,
    WINDOW_S,
    Decoded,
    DecodeOptions,
    Segment,
    WindowDecoder,
)

_MIN_ADVANCE_S = 1.0  # a window always moves the start on by at least this much


@dataclass(frozen=True)
class Heard:
    """The text of a whole utterance and Whisper's confidence in it."""

    segments: tuple[Segment, ...]  # times from the start of the audio
    avg_logprob: float
    no_speech_prob: float
    windows: int
    fell_back: int

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


def transcribe_long(
    decoder: WindowDecoder,
    samples: np.ndarray,
    options: DecodeOptions = FINAL,
    *,
    vocabulary: str = "",
    previous: str = "",
) -> Heard:
    """Transcribe float32 16 kHz ``samples`` of any length."""
    window = int(WINDOW_S * SAMPLE_RATE)
    seek = 0
    segments: list[Segment] = []
    logprobs: list[float] = []
    no_speech: list[float] = []
    windows = fell_back = 0
    heard = previous
    while seek < samples.size:
        chunk = samples[seek : seek + window]
        last = seek + window >= samples.size
        if chunk.size < SAMPLE_RATE // 10 and segments:
            break  # a scrap of tail after the last window's speech: nothing to hear
        d: Decoded = decoder.decode(chunk, options, vocabulary=vocabulary, previous=heard)
        windows += 1
        fell_back += d.fell_back
        no_speech.append(d.no_speech_prob)
        keep = list(d.segments)
        advance = chunk.size / SAMPLE_RATE
        if not last and keep:
            if not d.complete and len(keep) > 1:
                keep.pop()  # cut off by the window edge: hear it whole in the next window
            end = keep[-1].end
            if end >= _MIN_ADVANCE_S:
                advance = min(advance, end)
        offset = seek / SAMPLE_RATE
        for s in keep:
            segments.append(Segment(offset + s.start, offset + s.end, s.text))
        if keep:
            logprobs.append(d.avg_logprob)
            heard = " ".join([heard, *(s.text for s in keep)]).strip()
        seek += int(advance * SAMPLE_RATE)
    return Heard(
        segments=tuple(segments),
        avg_logprob=float(np.mean(logprobs)) if logprobs else 0.0,
        no_speech_prob=min(no_speech) if no_speech else 1.0,
        windows=windows,
        fell_back=fell_back,
    )
