"""Agent audio pacing and what the caller heard, as a sans-I/O object driven by a clock.

A transport plays what it is handed, so the engine paces its output: a frame goes out at
most ``lead`` ahead of the moment the caller hears it. Small lead means a barge-in stops
the agent quickly; knowing when each frame is heard is what lets the session say which
words of a cut utterance the caller actually heard (that text enters the history).

The playback clock: a run of frames starts at ``t0`` and the k-th frame handed out since
then is heard at ``t0 + k * 20 ms``. When everything handed out has played (the queue ran
dry, or the engine was late) the clock restarts at the next frame instead of bursting to
catch up.

Pause and resume (the caller spoke over the agent, see turn_detection.overlap): a paused
utterance hands out nothing more, but its frames are kept, so it can go on from where the
caller stopped hearing it (a little before: see :meth:`Playout.resume_frame`) or be cut.

No I/O: the caller passes ``now`` to :meth:`Playout.poll` and does what the returned step
says (hand out a frame, announce the end of an utterance, sleep until a time). The
session's asyncio loop only shuttles frames; tests drive it with plain numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice_core.audio.frames import FRAME_MS

FRAME_S = FRAME_MS / 1000


@dataclass(eq=False)
class Utterance:
    """One agent utterance on its way out: what was said and how much of it was played."""

    id: int
    # The owner's turn (a voice_core.turns.Turn), carried opaquely: playout needs nothing
    # of it, and importing turns here would make the two modules import each other.
    turn: Any = None
    clauses: list[tuple[str, int]] = field(default_factory=list)  # (text, frames)
    queued: int = 0  # frames accepted for playout
    released: int = 0  # frames handed to the transport
    played_base: int = 0  # frames surely played before the playback clock last restarted
    done: bool = False  # all frames queued
    played: bool = False  # the caller has heard all of it
    cancelled: bool = False  # cut by barge-in: nothing more of it goes out
    # Every frame pushed, kept until the utterance is dropped: a paused utterance resumes
    # from them (a 10 s utterance is 320 kB).
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    held_at: int | None = None  # paused: the frames the caller had heard by then

    @property
    def text(self) -> str:
        """Everything the utterance says (what the caller hears if nobody interrupts)."""
        return " ".join(text for text, _ in self.clauses)

    def add_clause(self, text: str, frames: int) -> None:
        self.clauses.append((text, frames))

    def clause_starts(self) -> list[int]:
        """The first frame of each clause (the one being synthesized included)."""
        starts, at = [0], 0
        for _, n in self.clauses:
            at += n
            starts.append(at)
        return starts


@dataclass(frozen=True)
class SendFrame:
    """Hand this frame to the transport now."""

    utterance: Utterance
    pcm: np.ndarray


@dataclass(frozen=True)
class UtteranceSent:
    """The last frame of the utterance has been handed out (it is still playing)."""

    utterance: Utterance


@dataclass(frozen=True)
class UtterancePlayed:
    """The caller has heard the whole utterance."""

    utterance: Utterance


@dataclass(frozen=True)
class WaitUntil:
    """Nothing is due before ``t``: sleep until then and poll again."""

    t: float


PlayoutStep = SendFrame | UtteranceSent | UtterancePlayed | WaitUntil


@dataclass
class _Entry:
    utterance: Utterance
    pcm: np.ndarray | None  # None: the end of the utterance


class Playout:
    def __init__(self, lead_s: float) -> None:
        self.lead_s = lead_s
        self.playing: Utterance | None = None  # whose frames are reaching the caller
        self.held: Utterance | None = None  # paused: nothing goes out until resume or cut
        self._queue: deque[_Entry] = deque()
        self._seq = 0
        self._t0: float | None = None  # when the current run of frames started playing
        self._k = 0  # frames handed out since t0
        # The head entry's decision, taken once when it reaches the head (as a frame's
        # clock restart is): its due time, and for an end entry whether it was announced.
        self._head_due: float | None = None
        self._head_sent = False

    # ------------------------------------------------------------------ input

    def open(self, turn: Any = None) -> Utterance:
        self._seq += 1
        return Utterance(self._seq, turn=turn)

    def push(self, utt: Utterance, frames: list[np.ndarray]) -> None:
        if utt.cancelled:
            return
        utt.frames.extend(frames)
        if utt is not self.held:  # a held utterance's frames are queued on resume
            self._queue.extend(_Entry(utt, frame) for frame in frames)
        utt.queued += len(frames)

    def close(self, utt: Utterance) -> None:
        """All of ``utt``'s frames are queued."""
        utt.done = True
        if not utt.cancelled and utt is not self.held:
            self._queue.append(_Entry(utt, None))

    @property
    def has_entries(self) -> bool:
        return bool(self._queue) and self.held is None

    @property
    def queued_frames(self) -> int:
        """Frames waiting to be handed out."""
        return sum(1 for e in self._queue if e.pcm is not None and not e.utterance.cancelled)

    # ------------------------------------------------------------------ output

    def poll(self, now: float) -> PlayoutStep | None:
        """What to do at ``now``; None when nothing is queued (or the output is paused)."""
        if self.held is not None:
            return None
        while self._queue:
            entry = self._queue[0]
            utt = entry.utterance
            if utt.cancelled:
                self._pop()
                continue
            if entry.pcm is None:
                return self._poll_end(utt, now)
            if self._head_due is None:
                if self._t0 is None or now > self._t0 + self._k * FRAME_S:
                    # Everything handed out so far has played (or the far end ran dry
                    # because we were late): restart the clock rather than burst.
                    self._t0 = now
                    self._k = 0
                    utt.played_base = utt.released
                self._head_due = self._t0 + self._k * FRAME_S - self.lead_s
            if self._head_due > now:
                return WaitUntil(self._head_due)
            self._pop()
            self.playing = utt
            utt.released += 1
            self._k += 1
            return SendFrame(utt, entry.pcm)
        return None

    def _poll_end(self, utt: Utterance, now: float) -> PlayoutStep:
        if not self._head_sent:
            self._head_sent = True
            return UtteranceSent(utt)
        if self._head_due is None:
            # The caller hears the last frame at t0 + k * 20 ms.
            self._head_due = self._t0 + self._k * FRAME_S if self._t0 is not None else now
        if self._head_due > now:
            return WaitUntil(self._head_due)
        self._pop()
        self.playing = None
        utt.played = True
        utt.frames = []  # heard in full: nothing to resume from any more
        return UtterancePlayed(utt)

    def _pop(self) -> None:
        self._queue.popleft()
        self._head_due = None
        self._head_sent = False

    # ------------------------------------------------------------------ barge-in

    def played_frames(self, utt: Utterance, now: float) -> int:
        """Frames of ``utt`` the caller has heard by ``now``."""
        played = utt.released
        if self._t0 is not None:
            since_restart = max(0, int((now - self._t0) / FRAME_S))
            played = utt.played_base + min(utt.released - utt.played_base, since_restart)
        return played

    def heard_text(self, utt: Utterance, now: float) -> str:
        """The words heard by ``now``, a clause cut proportionally to its frames played."""
        if utt.held_at is not None:
            return self.text_upto(utt, utt.held_at)
        return self.text_upto(utt, self.played_frames(utt, now))

    def text_upto(self, utt: Utterance, played: int) -> str:
        """The words of ``utt``'s first ``played`` frames."""
        words: list[str] = []
        for text, n in utt.clauses:
            if played <= 0:
                break
            if played >= n:
                words.extend(text.split())
            else:
                parts = text.split()
                words.extend(parts[: int(len(parts) * played / max(1, n))])
            played -= n
        return " ".join(words)

    def cut(self, utt: Utterance | None, now: float) -> str:
        """Barge-in: stop ``utt`` (the transport drops what it holds); returns what was heard.

        The playback clock stops too: the next frame starts a new run.
        """
        heard = ""
        if utt is not None:
            heard = self.heard_text(utt, now)
            utt.cancelled = True
            utt.frames = []
            if utt is self.held:
                self.held = None
        self.playing = None
        self._t0 = None
        return heard

    # ------------------------------------------------------------------ pause / resume

    def pause(self, utt: Utterance, now: float) -> int:
        """Hold ``utt`` (the transport drops what it holds): nothing more goes out, its
        frames are kept. Returns the frames the caller heard: where it stopped."""
        utt.held_at = self.played_frames(utt, now)
        self.held = utt
        self.playing = None
        self._t0 = None
        self._queue = deque(e for e in self._queue if e.utterance is not utt)
        self._head_due = None
        self._head_sent = False
        return utt.held_at

    def resume(self, utt: Utterance, from_frame: int) -> None:
        """Play the held ``utt`` on from ``from_frame`` (see :meth:`resume_frame`),
        ahead of whatever was queued after it."""
        if utt is not self.held:
            return
        self.held = None
        utt.held_at = None
        from_frame = max(0, min(from_frame, len(utt.frames)))
        utt.released = from_frame  # the playback clock restarts: played_base follows
        entries = [_Entry(utt, pcm) for pcm in utt.frames[from_frame:]]
        if utt.done:
            entries.append(_Entry(utt, None))
        self._queue.extendleft(reversed(entries))
        self._head_due = None
        self._head_sent = False

    def resume_frame(self, utt: Utterance, talked_over: int, max_rewind: int) -> int:
        """Where the held ``utt`` should go on from, so the caller misses nothing and no
        word restarts in its middle: back over the ``talked_over`` frames the caller spoke
        across, then to the start of that clause when it lies within ``max_rewind``
        frames, else to the quietest frame there (a gap between words)."""
        cut = utt.held_at if utt.held_at is not None else utt.released
        target = max(0, cut - talked_over)
        clause_start = max(s for s in utt.clause_starts() if s <= target)
        lowest = max(0, target - max_rewind)
        if clause_start >= lowest:
            return clause_start
        window = utt.frames[lowest : target + 1]
        if not window:
            return target
        energy = [float(np.abs(f.astype(np.int32)).mean()) for f in window]
        quietest = min(energy)
        # The latest of the (near-)quietest frames: repeat as little as possible.
        k = max(i for i, e in enumerate(energy) if e <= quietest * 1.1 + 1.0)
        return lowest + k
