"""Cut a token stream into speakable clauses, so TTS starts on the first clause.

The first chunk is cut early (at a comma or after a few words at a clause mark)
because it decides time-to-first-audio; later chunks prefer whole sentences, which
Piper phrases more naturally.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?;:](?=[\s\"')\]]|$)|\n")
_CLAUSE_END = re.compile(r"[,\u2014\u2013](?=\s)|\s[-](?=\s)")
# "Dr." or "3.5" must not end a sentence.
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|e\.g|i\.e|a\.m|p\.m)\.$", re.IGNORECASE)
_MARKUP = re.compile(r"[*_#`]+")
# Where a long unpunctuated first clause can be cut with the least harm to prosody.
_BREAK_WORDS = re.compile(
    r"\s(?=(?:and|but|so|or|because|which|that|if|when|while|to|for|with)\s)", re.IGNORECASE
)


def clean_for_speech(text: str) -> str:
    """Drop markdown emphasis and collapse whitespace; the LLM sometimes formats."""
    return re.sub(r"\s+", " ", _MARKUP.sub("", text)).strip()


class ClauseChunker:
    def __init__(
        self, first_min_words: int = 2, min_words: int = 6, first_soft_max_words: int = 7
    ) -> None:
        self.first_min_words = first_min_words
        self.min_words = min_words
        # Piper's time grows with clause length, and the first clause is on the
        # critical path: past this many words, cut it before a conjunction.
        self.first_soft_max_words = first_soft_max_words
        self._buf = ""
        self._emitted = 0

    def push(self, token: str) -> list[str]:
        # Markup goes before cut-finding, so "**Great!** We" cuts after "Great!".
        self._buf += _MARKUP.sub("", token)
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            clause = clean_for_speech(self._buf[:cut])
            self._buf = self._buf[cut:]
            if clause and any(ch.isalnum() for ch in clause):
                out.append(clause)
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        clause = clean_for_speech(self._buf)
        self._buf = ""
        if clause and any(ch.isalnum() for ch in clause):
            self._emitted += 1
            return [clause]
        return []

    def _find_cut(self) -> int | None:
        buf = self._buf
        min_words = self.first_min_words if self._emitted == 0 else self.min_words
        for m in _SENTENCE_END.finditer(buf):
            end = m.end()
            head = buf[:end]
            # Cut only once the next character is seen ("3." may become "3.5"),
            # and never after an abbreviation such as "Dr.".
            if end < len(buf) and not _ABBREV.search(head):
                return end
        if self._emitted == 0:
            for m in _CLAUSE_END.finditer(buf):
                end = m.end()
                if len(buf[:end].split()) >= min_words and end < len(buf):
                    return end
            if len(buf.split()) > self.first_soft_max_words:
                for m in _BREAK_WORDS.finditer(buf):
                    if len(buf[: m.start()].split()) >= 4:
                        return m.start()
        # Guard against a runaway clause with no punctuation at all.
        words = buf.split(" ")
        if len(words) > 30:
            return len(" ".join(words[:25]))
        return None
