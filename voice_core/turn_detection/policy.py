"""How long to wait for more speech, from the acoustic model and the words.

Sans-I/O: a probability and a text in, a ``Verdict`` out. The session asks at the
speculative pause (so the model's cost hides in the silence the caller is making
anyway) and the endpointer then ends the turn after ``Verdict.silence_ms`` of
silence, counted from the caller's last voiced frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_core.config import EndpointingConfig
from voice_core.turn_detection.text_hints import incomplete, plainly_complete


@dataclass(frozen=True)
class Verdict:
    complete: bool
    silence_ms: int
    why: str  # what the call log shows: "model: complete (0.93)", "text: ends on 'and'", ...
    probability: float | None = None


def decide(cfg: EndpointingConfig, probability: float | None, text: str) -> Verdict:
    """The words overrule the model only where they are unambiguous."""
    dangling = incomplete(text)
    if dangling:
        return Verdict(False, cfg.incomplete_silence_ms, f"text: {dangling}", probability)
    if probability is None:  # no model: a partial may be stale, so it only extends the wait
        return Verdict(False, cfg.end_of_turn_silence_ms, "silence (no model)", None)
    if probability >= cfg.complete_threshold:
        return Verdict(
            True, cfg.complete_silence_ms, f"model: complete ({probability:.2f})", probability
        )
    if plainly_complete(text) and probability >= cfg.complete_threshold / 2:
        return Verdict(
            True, cfg.complete_silence_ms, f"text: complete, model {probability:.2f}", probability
        )
    return Verdict(
        False, cfg.incomplete_silence_ms, f"model: incomplete ({probability:.2f})", probability
    )


# A partial decoded up to this much before the caller's last voiced frame still counts as
# covering it: the VAD's last voiced frame runs a frame or two past the last word.
_FRESH_SLACK_SAMPLES = 2 * 320


def fresh_partial(text: str, decoded_samples: int, speech_end_samples: int) -> str:
    """``text`` if its audio reached the end of the caller's speech at the pause, else "".

    Partials are decoded every few hundred ms, so the latest one may predate the last
    words: "I would like to" from a turn that went on "... book for Tuesday." would
    make the hints call a finished turn incomplete. A stale partial says nothing."""
    if decoded_samples + _FRESH_SLACK_SAMPLES >= speech_end_samples:
        return text
    return ""
