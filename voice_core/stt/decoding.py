"""One Whisper window (at most 30 s): features -> encode -> decode with timestamps, checked.

What each step is for (each measured on real phone speech with
``benchmarks/stt_accuracy.py --ablation``; numbers in benchmarks/results/):

- Encode only the real audio plus a short pad (1.5 s of log-mel 0, Whisper's own
  padding value), then extend the encoder output to the full 1500 positions with
  the encoding of an all-padding window, computed once at load. Whisper was
  trained on 30 s windows: on an encoder output that simply stops where the
  speech stops, its decoder does not know the speech is over and says it again
  ("Press 5 to leave a message. Press 5 to leave a message", "7, 7, 7").
  With the padding memory it sees the "nothing more" region it was trained
  with, while the encoder only ran over the real audio (a tenth of the work
  for a 3 s utterance).
- Decode with timestamp tokens, no timestamp allowed past the real audio end,
  and drop any segment that starts after it.
- A length cap from the duration (7 tokens a second, timestamps included): a
  runaway decode costs bounded time.
- Beam 5 for finals, greedy for partials.
- A decode that still loops (a phrase said twice in a row, zlib compression
  ratio over 2.4) or that the model does not believe (average log-probability
  under -1) is decoded again on the real 30 s padded window, the exact input
  stock ``transcribe()`` decodes; the better of the two is kept.
  Deterministic, unlike temperature sampling, and rare, so cheap.
- No speech is Whisper's own verdict (no-speech probability over 0.6 together
  with an average log-probability under -1), not a list of filler words: "bye"
  and "thank you" are what callers say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import ctranslate2
import numpy as np

from voice_core.stt.text import compression_ratio, cut_repetition, repeated_phrase, words

SAMPLE_RATE = 16000
HOP = 160  # samples per mel frame (10 ms)
WINDOW_FRAMES = 3000  # Whisper's 30 s window
WINDOW_S = 30.0
TIME_PRECISION = 0.02  # seconds per timestamp token (one encoder position)
MAX_CONTEXT_TOKENS = 223  # Whisper keeps its prompt under half of its 448-token context
MAX_VOCABULARY_TOKENS = 96
MAX_NEW_TOKENS = 224
DECODER_POSITIONS = 448  # of those, at most this many for the agent's vocabulary


@dataclass(frozen=True)
class DecodeOptions:
    """The levers; ``benchmarks/stt_accuracy.py --ablation`` measures each one."""

    beam_size: int = 5
    timestamps: bool = True
    pad_s: float = 1.5  # log-mel padding encoded after the speech
    padding_memory: bool = True  # extend the encoder output to 30 s with cached padding
    length_cap: bool = True
    tokens_per_second: float = 7.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    fallback: bool = True  # re-decode on the real 30 s window when the checks fail
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    no_speech_threshold: float = 0.6


FINAL = DecodeOptions()
PARTIAL = DecodeOptions(beam_size=1, fallback=False)


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the window start
    end: float
    text: str


@dataclass(frozen=True)
class Decoded:
    segments: tuple[Segment, ...]
    avg_logprob: float = 0.0
    no_speech_prob: float = 1.0
    compression_ratio: float = 0.0
    n_tokens: int = 0
    fell_back: bool = False
    complete: bool = True  # the last segment was closed by a timestamp

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()

    @property
    def loops(self) -> bool:
        return repeated_phrase(words(self.text)) is not None


NOTHING = Decoded(())


@dataclass
class WindowDecoder:
    """Decodes one window of 16 kHz float32 samples with a CTranslate2 Whisper model."""

    model: ctranslate2.models.Whisper
    tokenizer: object  # faster_whisper.tokenizer.Tokenizer
    features: object  # faster_whisper.feature_extractor.FeatureExtractor
    suppress: list[int] = field(default_factory=lambda: [-1])
    _padding_memory: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------ inputs

    def prompt(self, vocabulary: str = "", previous: str = "", *, timestamps: bool) -> list[int]:
        """[vocabulary + previous text] + start of transcript (+ no-timestamps).

        The agent's vocabulary (names, products) biases the decoder the way
        Whisper's ``initial_prompt`` does; the previous text (what was already
        heard of this utterance) keeps a long utterance consistent across windows.
        """
        tok = self.tokenizer
        vocab = tok.encode(" " + vocabulary.strip()) if vocabulary.strip() else []
        vocab = vocab[:MAX_VOCABULARY_TOKENS]
        room = MAX_CONTEXT_TOKENS - len(vocab)
        prev = tok.encode(" " + previous.strip())[-room:] if previous.strip() and room > 0 else []
        out = [tok.sot_prev, *vocab, *prev] if vocab or prev else []
        out += list(tok.sot_sequence)
        if not timestamps:
            out.append(tok.no_timestamps)
        return out

    def encode(self, samples: np.ndarray, pad_s: float, *, padding_memory: bool = True):
        """Encoder output for ``samples`` (<= 30 s) and ``pad_s`` of log-mel padding after them."""
        content = samples.size // HOP
        pad = round(pad_s * SAMPLE_RATE / HOP)
        feats = self.features(samples, padding=HOP)[:, :content]
        feats = np.pad(feats, ((0, 0), (0, pad)))
        # The encoder halves the frame count with a stride-2 conv: keep it even.
        n = min(WINDOW_FRAMES, feats.shape[-1] - feats.shape[-1] % 2)
        arr = np.ascontiguousarray(feats[None, :, :n].astype(np.float32))
        encoded = self.model.encode(ctranslate2.StorageView.from_array(arr), to_cpu=True)
        if not padding_memory or n >= WINDOW_FRAMES:
            return encoded
        tail = self.padding_memory()[:, n // 2 :]
        memory = np.concatenate([np.asarray(encoded), tail.astype(np.asarray(encoded).dtype)], 1)
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(memory))

    def padding_memory(self) -> np.ndarray:
        """The encoder output of a window that is all padding (computed once, ~0.7 s)."""
        if self._padding_memory is None:
            zeros = np.zeros((1, self.model.n_mels, WINDOW_FRAMES), dtype=np.float32)
            out = self.model.encode(ctranslate2.StorageView.from_array(zeros), to_cpu=True)
            self._padding_memory = np.array(out)
        return self._padding_memory

    # ------------------------------------------------------------ decoding

    def decode(
        self,
        samples: np.ndarray,
        options: DecodeOptions = FINAL,
        *,
        vocabulary: str = "",
        previous: str = "",
    ) -> Decoded:
        """Decode ``samples`` (float32, 16 kHz, at most 30 s)."""
        seconds = samples.size / SAMPLE_RATE
        if seconds > WINDOW_S + 1e-6:
            raise ValueError(f"a window holds at most {WINDOW_S:.0f} s, got {seconds:.2f} s")
        if samples.size < HOP:
            return NOTHING
        prompt = self.prompt(vocabulary, previous, timestamps=options.timestamps)
        encoded = self.encode(samples, options.pad_s, padding_memory=options.padding_memory)
        first = self._generate(encoded, prompt, seconds, options)
        if not options.fallback or not self._failed(first, options):
            return first
        window = self.encode(samples, WINDOW_S - seconds, padding_memory=False)
        beam = replace(options, beam_size=max(5, options.beam_size))
        second = replace(self._generate(window, prompt, seconds, beam), fell_back=True)
        best = second
        if self._failed(second, options) and not self._better(second, first):
            best = first
        return _cut_loop(best, options) if self._failed(best, options) else best

    def _failed(self, d: Decoded, options: DecodeOptions) -> bool:
        return bool(d.segments) and (
            d.loops
            or d.compression_ratio > options.compression_ratio_threshold
            or d.avg_logprob < options.log_prob_threshold
        )

    @staticmethod
    def _better(a: Decoded, b: Decoded) -> bool:
        if a.loops != b.loops:
            return not a.loops
        return a.avg_logprob > b.avg_logprob

    def _generate(
        self, encoded, prompt: list[int], seconds: float, options: DecodeOptions
    ) -> Decoded:
        tok = self.tokenizer
        suppress = list(self.suppress)
        if options.timestamps:
            # No timestamp after the real end (+0.1 s): the decoder must close there.
            last = min(1500, math.ceil(seconds / TIME_PRECISION) + 5)
            suppress += range(tok.timestamp_begin + last + 1, tok.timestamp_begin + 1501)
        # The decoder has 448 positions for the prompt and the new tokens together.
        max_new = min(MAX_NEW_TOKENS, DECODER_POSITIONS - len(prompt) - 1)
        if options.length_cap:
            max_new = min(max_new, 8 + math.ceil(seconds * options.tokens_per_second))
        result = self.model.generate(
            encoded,
            [prompt],
            beam_size=options.beam_size,
            max_length=_max_length(len(prompt), max_new),
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            return_scores=True,
            return_no_speech_prob=True,
            max_initial_timestamp_index=50,
            suppress_blank=True,
            suppress_tokens=suppress,
        )[0]
        tokens = list(result.sequences_ids[0])
        segments, complete = self._segments(tokens, seconds)
        text = " ".join(s.text for s in segments)
        # CTranslate2's score is already divided by length ** length_penalty (1.0);
        # Whisper's average counts the end-of-text token too.
        n = len(tokens)
        avg_logprob = float(result.scores[0]) * n / (n + 1) if result.scores else 0.0
        no_speech = float(result.no_speech_prob)
        if no_speech > options.no_speech_threshold and avg_logprob < options.log_prob_threshold:
            segments = ()
        if not words(text):
            segments = ()  # ". . . ." on a line tone: punctuation is not speech
        return Decoded(
            segments=segments,
            avg_logprob=avg_logprob,
            no_speech_prob=no_speech,
            compression_ratio=compression_ratio(text),
            n_tokens=len(tokens),
            complete=complete,
        )

    def _segments(self, tokens: list[int], seconds: float) -> tuple[tuple[Segment, ...], bool]:
        """Split at timestamp tokens; drop what starts after the real audio end."""
        tok = self.tokenizer
        ts0 = tok.timestamp_begin
        segments: list[Segment] = []
        text: list[int] = []
        start = 0.0
        opened = False
        for t in tokens:
            if t == tok.eot:
                break
            if t >= ts0:
                time_s = (t - ts0) * TIME_PRECISION
                if text:
                    segments.append(Segment(start, time_s, tok.decode(text).strip()))
                    # A lone timestamp between two segments is both an end and a start.
                    text, opened, start = [], False, time_s
                elif not opened:
                    start, opened = time_s, True
            elif t < tok.eot:
                text.append(t)
        complete = not text
        if text:
            segments.append(Segment(start, seconds, tok.decode(text).strip()))
        end_guard = max(0.0, seconds - 0.1)
        return tuple(s for s in segments if s.text and s.start < end_guard), complete


def _max_length(prompt: int, new: int) -> int:
    """CTranslate2's ``max_length`` that lets ``new`` tokens follow a ``prompt``-token prompt.

    Measured on its Whisper: it generates at most ``min(max_length / 2,
    max_length - prompt + 1)`` tokens, and a ``max_length`` below the prompt
    length crashes the process (segfault), so both bounds are met here.
    """
    return min(DECODER_POSITIONS, max(2 * new, prompt + new))


def _cut_loop(d: Decoded, options: DecodeOptions) -> Decoded:
    """A decode that loops even on the 30 s window: keep what comes before the loop.

    The LLM must not answer a phrase nobody said twice; and what is still one
    endless "word" ("AHHHHHHHH" on screaming) is no speech at all.
    """
    keep = len(cut_repetition(words(d.text)))
    segments: list[Segment] = []
    for s in d.segments:
        n = len(words(s.text))
        if n <= keep:
            segments.append(s)
            keep -= n
            continue
        if keep > 0:
            segments.append(replace(s, text=_first_words(s.text, keep)))
        break
    text = " ".join(s.text for s in segments)
    if compression_ratio(text) > options.compression_ratio_threshold:
        segments = []
    return replace(d, segments=tuple(segments), compression_ratio=compression_ratio(text))


def _first_words(text: str, n: int) -> str:
    """The first ``n`` words of ``text`` as written (punctuation kept)."""
    out, count = [], 0
    for token in text.split():
        out.append(token)
        count += len(words(token))
        if count >= n:
            break
    return " ".join(out)
