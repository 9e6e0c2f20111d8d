"""Checks on decoded text: repeated phrases and how compressible a hypothesis is.

Whisper's failure on short or cut-off input is a loop: the decoder says the
utterance, then says it again ("Press 5 to leave a message. Press 5 to leave a
message"). These helpers find that on plain words, so the decoder can retry and
the benchmark and tests can count it.
"""

from __future__ import annotations

import re
import zlib

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case word tokens without punctuation ("Leave A Message." -> leave a message)."""
    return _WORD.findall(text.lower())


_NUMBER_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine ten double triple".split()
)
# A dictated number repeats itself legitimately ("5 5 5", "1 2 1 2", "oh oh seven"):
# only this many times in a row is a loop.
_DIGIT_RUNS = 4


def _dictated(phrase: list[str]) -> bool:
    return all(t.isdigit() or t in _NUMBER_WORDS for t in phrase)


def _runs(tokens: list[str], i: int, n: int) -> int:
    """How many times tokens[i:i+n] is said in a row from i."""
    k = 1
    while tokens[i + k * n : i + (k + 1) * n] == tokens[i : i + n]:
        k += 1
    return k


def repeated_phrase(
    tokens: list[str], *, max_n: int = 12, single_word_run: int = 3
) -> tuple[str, ...] | None:
    """The first phrase said twice in a row ("to leave a message to leave a message").

    Returns the repeated n-gram, or None. A single word counts only from
    ``single_word_run`` in a row: people do say "no, no" or "bye bye", so without a
    reference two of one word alone is not taken for a loop.
    """
    n_tokens = len(tokens)
    for n in range(1, min(max_n, n_tokens // 2) + 1):
        for i in range(n_tokens - 2 * n + 1):
            if tokens[i : i + n] != tokens[i + n : i + 2 * n]:
                continue
            if n == 1 and tokens[i : i + single_word_run] != tokens[i : i + 1] * single_word_run:
                continue
            if _dictated(tokens[i : i + n]) and _runs(tokens, i, n) < _DIGIT_RUNS:
                continue
            return tuple(tokens[i : i + n])
    return None


def cut_repetition(tokens: list[str], *, max_n: int = 12) -> list[str]:
    """``tokens`` up to where a phrase starts being said again ("a 28.8 a 28.8 a" -> "a 28.8")."""
    n_tokens = len(tokens)
    for i in range(n_tokens):
        for n in range(1, min(max_n, (n_tokens - i) // 2) + 1):
            if tokens[i : i + n] == tokens[i + n : i + 2 * n] and (
                n > 1 or tokens[i + 2 : i + 3] == tokens[i : i + 1]
            ):
                if _dictated(tokens[i : i + n]) and _runs(tokens, i, n) < _DIGIT_RUNS:
                    continue
                return tokens[: i + n]
    return tokens


def new_repetition(hypothesis: str, reference: str) -> tuple[str, ...] | None:
    """A phrase the hypothesis repeats that the reference does not repeat itself."""
    phrase = repeated_phrase(words(hypothesis), single_word_run=2)
    if phrase is None:
        return None
    doubled = " ".join(phrase + phrase)
    return None if doubled in " ".join(words(reference)) else phrase


def compression_ratio(text: str) -> float:
    """Whisper's own loop signal: text / zlib(text) in bytes (above ~2.4 is a loop)."""
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw))
