"""Sequence numbers on a media stream: gaps, repeats and late arrivals, counted, never fatal.

Carriers number the messages of a stream (Twilio's ``sequenceNumber``, Telnyx's
``sequence_number``). Over a live network a message is sometimes lost (a gap), sent
twice (a repeat) or overtaken by the next one (a late arrival: a carrier whose mark
echoes and media frames leave from different tasks; Telnyx documents that its frames
may arrive out of order). None of that makes the stream meaningless, so none of it
ends the call: ``SequenceTracker.observe`` says what each number is and counts it, and
the protocol module decides what to do (a repeat is dropped; what a late message means
depends on its kind).

The counters (``SequenceStats``) reach the call record, so an operator sees a line
that lost audio without reading logs. ``frames_lost`` counts numbers skipped and never
seen since; a skipped number that turns up later moves from lost to reordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Arrival(Enum):
    NEXT = "next"  # higher than any number so far (after a gap, perhaps)
    LATE = "late"  # a number that was skipped earlier and has arrived after all
    REPEAT = "repeat"  # a number already seen (or too old to tell: see ``window``)


@dataclass
class SequenceStats:
    frames_lost: int = 0
    frames_reordered: int = 0
    frames_duplicated: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "frames_lost": self.frames_lost,
            "frames_reordered": self.frames_reordered,
            "frames_duplicated": self.frames_duplicated,
        }

    @property
    def anomalies(self) -> int:
        return self.frames_lost + self.frames_reordered + self.frames_duplicated


@dataclass
class SequenceTracker:
    """Classifies each sequence number of one stream against those seen before it.

    ``window``: how many skipped numbers are remembered, so a late one can be told from
    a repeat. 256 messages are about 5 s of 20 ms media, far more than any reorder a
    network produces; a number older than that is treated as a repeat (dropped either
    way), and memory stays bounded whatever numbers a peer sends.
    """

    window: int = 256
    last: int | None = None
    stats: SequenceStats = field(default_factory=SequenceStats)
    _missing: set[int] = field(default_factory=set, repr=False)

    def observe(self, number: int) -> Arrival:
        last = self.last
        if last is None or number > last:
            if last is not None and number > last + 1:
                self.stats.frames_lost += number - last - 1
                self._missing.update(range(max(last + 1, number - self.window), number))
            self.last = number
            floor = number - self.window
            if self._missing and min(self._missing) < floor:
                self._missing = {n for n in self._missing if n >= floor}
            return Arrival.NEXT
        if number in self._missing:
            self._missing.discard(number)
            self.stats.frames_lost -= 1
            self.stats.frames_reordered += 1
            return Arrival.LATE
        self.stats.frames_duplicated += 1
        return Arrival.REPEAT
