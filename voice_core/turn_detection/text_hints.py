"""What the words say about the end of a turn: a dangling "and", a number still being
dictated, or a sentence that is plainly done. Pure functions of the partial transcript."""

from __future__ import annotations

import re

# A turn that ends on one of these is not over: the caller is mid-phrase.
_DANGLING = {
    "and", "but", "or", "so", "because", "if", "then", "than", "that", "which", "who",
    "the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "these",
    "to", "of", "for", "with", "at", "on", "in", "from", "by", "about", "like",
    "i", "i'm", "we", "um", "uh", "er", "erm",
    "actually", "also", "maybe", "just", "need", "want", "would", "could", "can", "will",
}  # fmt: skip
# "... my number is", "... the address is", "... it's spelled": a value comes next.
_LEAD_IN = re.compile(
    r"\b((number|phone|address|name|email|code|zip|postcode|date) (is|was)|spelled|spell)\s*[,:]?$"
)
_DIGITS = re.compile(r"\d")
_WORD = re.compile(r"[a-z']+|\d+")


def incomplete(text: str) -> str | None:
    """Why the words say the caller is not done (None when they do not say so)."""
    t = text.strip().lower()
    if not t:
        return None
    if t.endswith((",", "-", "...", "…")):
        return "trailing punctuation"
    words = _WORD.findall(t)
    if not words or t.endswith(("?", "!")):
        return None
    if words[-1] in _DANGLING:
        return f"ends on {words[-1]!r}"
    if _LEAD_IN.search(t.rstrip(".!?")):
        return "a value comes next"
    digits = len(_DIGITS.findall(t))
    if 0 < digits < 10 and _DIGITS.search(words[-1]) and not t.endswith((".", "?", "!")):
        return "digits still being dictated"
    return None


def plainly_complete(text: str) -> bool:
    """A question or a closed sentence of a few words, or a bare short answer."""
    t = text.strip().lower()
    words = _WORD.findall(t)
    if not words or incomplete(t):
        return False
    if t.endswith("?") and len(words) >= 2:
        return True
    return t.endswith((".", "!")) and len(words) >= 1
