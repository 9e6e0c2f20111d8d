"""What the ear should expect: Whisper prompt words from the slots the flow waits for.

Whisper's prompt is the text "before" the audio; words in it are likelier in the
transcript. A flow knows what the caller is about to say, so it primes the ear with the
words of those slots: weekday names, clock times, an enum's values, the alphabet while a
name is spelled. Measured on 40 Piper-voiced day and time answers over the phone path
(8 kHz mu-law, Whisper tiny.en): right 29 times plain, 36 primed ("Wednesday at 10 am."
heard "Once they attend them." 4 times in 5 without it). Only the beam-search final is
primed, never the greedy partials, which copy prompt words into a few syllables of
audio (voice_core/stt/whisper.py).
"""

from __future__ import annotations

from voice_core.flows.spec import SlotSpec

WEEKDAYS_HINT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."
TIMES_HINT = "At 9 am, 10:30, noon, 2 pm."
PHONE_HINT = "555 123 4567."
# The alphabet as comma-separated capitals primes Whisper to write letters ("S, N, I, T,
# H") where it would write words or fuse the spoken name into the first letter.
SPELLING_HINT = "A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z."


def slot_hint(slot: SlotSpec, *, asked: bool) -> str:
    if slot.type == "weekday":
        return WEEKDAYS_HINT
    if slot.type == "time":
        return TIMES_HINT
    if slot.type == "enum" and slot.values:
        return ", ".join(slot.values) + "."
    if slot.type == "phone" and asked:
        return PHONE_HINT
    if slot.type == "name" and asked:
        return SPELLING_HINT  # only when asked: letters everywhere would bias to them
    return ""


def ear_hints(slots: list[SlotSpec], asked: SlotSpec | None) -> str:
    """What the caller may say now: the slot just asked for, or every value the node
    still collects."""
    parts: list[str] = []
    if asked is not None:
        parts.append(slot_hint(asked, asked=True))
    else:
        parts.extend(slot_hint(s, asked=False) for s in slots)
    return " ".join(p for p in parts if p)
