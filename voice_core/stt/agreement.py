"""LocalAgreement-2 over a sliding window: partials whose committed prefix never changes.

Sans-I/O: hypotheses in (the segments one partial decode of the window heard),
the committed prefix, the tentative rest and where the window now starts out.
As in whisper_streaming (Machacek et al., 2023): a word is committed once two
consecutive hypotheses agree on it and on everything before it; committed words
are never taken back. The window is cut at the end of a segment all of whose
words are committed once it is longer than ``trim_after_s``, and the audio
before the cut is never decoded again: the cost of a partial is bounded by the
window, not by how long the caller has been talking. A window that reaches
``max_window_s`` without such a segment is cut anyway at its last segment
boundary (its words committed as they are), so it never outgrows Whisper's
30 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voice_core.stt.decoding import Segment
from voice_core.stt.text import cut_repetition

_PUNCT = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    """How two hypotheses' words compare: case and punctuation do not count."""
    return _PUNCT.sub("", word.lower())


def _words(segments: tuple[Segment, ...]) -> list[str]:
    """The hypothesis' words; a token that is only punctuation ("...") is no word."""
    return [w for s in segments for w in s.text.split() if _key(w)]


def _hypothesis(segments: tuple[Segment, ...]) -> list[str]:
    """The words, up to where the (greedy, cut-off) decode starts looping: never committed."""
    words = _words(segments)
    kept = cut_repetition([_key(w) for w in words])
    return words[: len(kept)]


def _agree(a: list[str], b: list[str]) -> bool:
    return len(a) == len(b) and all(_key(x) == _key(y) for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Update:
    committed: str  # every committed word of the utterance: only ever grows
    tentative: str  # the rest of the latest hypothesis
    window_start_s: float  # where the next window starts, from the utterance start

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.committed, self.tentative) if t)


@dataclass
class LocalAgreement:
    trim_after_s: float = 6.0
    max_window_s: float = 16.0
    window_start_s: float = 0.0
    before: list[str] = field(default_factory=list)  # committed words of audio cut off
    inside: list[str] = field(default_factory=list)  # committed words inside the window
    _previous: list[str] = field(default_factory=list)  # last hypothesis (window words)

    @property
    def committed(self) -> str:
        return " ".join(self.before + self.inside)

    @property
    def committed_before_window(self) -> str:
        return " ".join(self.before)

    def push(self, segments: tuple[Segment, ...], window_s: float) -> Update:
        """One new hypothesis of the window (segment times from the window start)."""
        hyp = _hypothesis(segments)
        start = self._after_committed(hyp)
        # hyp[i] is committed word i - shift of the window (the decoder may split words anew).
        shift = start - len(self.inside) if start is not None else None
        tentative = hyp[start:] if start is not None else hyp[len(self.inside) :]
        if start is not None:
            prev_start = self._after_committed(self._previous)
            previous = self._previous[prev_start:] if prev_start is not None else []
            n = 0
            while n < min(len(previous), len(tentative)) and _key(previous[n]) == _key(
                tentative[n]
            ):
                n += 1
            self.inside += tentative[:n]
            tentative = tentative[n:]
        self._previous = hyp
        self._trim(segments, window_s, shift)
        return Update(self.committed, " ".join(tentative), self.window_start_s)

    def _after_committed(self, hyp: list[str]) -> int | None:
        """Where ``hyp`` goes on past the committed words of the window, or None if lost.

        Usually the hypothesis starts with them; when the decoder now splits or
        joins a word differently ("log in" / "login") the last two committed words
        are looked for near where they should be.
        """
        k = len(self.inside)
        if _agree(hyp[:k], self.inside):
            return k
        for m in (2, 1):  # the last two committed words, else the last one
            tail = [_key(w) for w in self.inside[-m:]]
            if len(tail) < m:
                continue
            near = range(max(m, k - 3), min(len(hyp), k + 3) + 1)
            for j in sorted(near, key=lambda j: abs(j - k)):
                if [_key(w) for w in hyp[j - m : j]] == tail:
                    return j
        return None

    def _trim(self, segments: tuple[Segment, ...], window_s: float, shift: int | None) -> None:
        if window_s <= self.trim_after_s or not segments:
            return
        # The last segment that is wholly committed and ends before the window's end.
        count, cut, cut_words = 0, None, 0
        if shift is not None:
            for s in segments:
                count += len(_words((s,)))
                if not 0 <= count - shift <= len(self.inside) or s.end > window_s - 0.5:
                    break
                cut, cut_words = s.end, count - shift
        if cut is None and window_s >= self.max_window_s:
            cut, cut_words = self._force(segments, window_s)
        if cut is None or cut <= 0:
            return
        self.before += self.inside[:cut_words]
        self.inside = self.inside[cut_words:]
        self._previous = []  # its words are in the old window's coordinates
        self.window_start_s += cut

    def _force(self, segments: tuple[Segment, ...], window_s: float) -> tuple[float, int]:
        """Cut a full window at its last inner segment boundary, committing what is before it."""
        keep = segments[:-1] if len(segments) > 1 else segments
        words = _hypothesis(segments)
        cut_words = min(len(_words(keep)), len(words))
        if cut_words > len(self.inside):
            self.inside = self.inside + words[len(self.inside) : cut_words]
        end = keep[-1].end if len(segments) > 1 else window_s
        return end, cut_words
