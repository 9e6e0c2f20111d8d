"""The agent's turns as an explicit state machine: phases, the allowed transitions, the slots.

A turn is one reply to the caller (or a fixed line such as the welcome). Its life:

    SPECULATIVE -> COMMITTED -> SPEAKING -> PLAYED
        |              |           |
        |              |           +-------> INTERRUPTED   (the caller talked over it)
        |              +-------------------> INTERRUPTED   (before any audio was out)
        |              +-------------------> PLAYED        (a reply with no audio)
        |              +-------------------> DISCARDED     (final STT: no speech)
        +----------------------------------> DISCARDED     (superseded, caller went on)

SPECULATIVE: prepared during a pause in the caller's speech, held from the caller's ear.
COMMITTED: the end of turn was decided (or the line is scripted); its audio may be played.
SPEAKING: its first frame was handed to the transport.

No clocks and no I/O: times are passed in, so the lifecycle is tested with plain calls.
The session's asyncio layer runs one reply task per turn and only asks these objects
what a turn may do next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from voice_core.playout import Utterance


class TurnPhase(Enum):
    SPECULATIVE = "speculative"  # reply prepared during a pause, not released
    COMMITTED = "committed"  # released to the caller, no audio out yet
    SPEAKING = "speaking"  # its audio is reaching the caller
    PLAYED = "played"  # finished: everything it said was played
    INTERRUPTED = "interrupted"  # finished: the caller talked over it
    DISCARDED = "discarded"  # finished: never heard (superseded speculation, no speech)


_P = TurnPhase
TRANSITIONS: dict[TurnPhase, frozenset[TurnPhase]] = {
    _P.SPECULATIVE: frozenset({_P.COMMITTED, _P.DISCARDED}),
    # COMMITTED -> PLAYED: a reply with no audio at all (an end_call tool call alone).
    # COMMITTED -> DISCARDED: the end of turn came before the final STT, which found no speech.
    _P.COMMITTED: frozenset({_P.SPEAKING, _P.PLAYED, _P.INTERRUPTED, _P.DISCARDED}),
    _P.SPEAKING: frozenset({_P.PLAYED, _P.INTERRUPTED}),
    _P.PLAYED: frozenset(),
    _P.INTERRUPTED: frozenset(),
    _P.DISCARDED: frozenset(),
}
# Phases in which the turn's text and audio may reach the caller.
_RELEASED = frozenset({_P.COMMITTED, _P.SPEAKING, _P.PLAYED, _P.INTERRUPTED})


class IllegalTransition(RuntimeError):
    """A turn was asked to move to a phase its current phase does not lead to."""


@dataclass(eq=False)
class Turn:
    """One agent reply and everything the session knows about it."""

    no: int
    audio: np.ndarray | None = None  # the caller's utterance (None: DTMF or scripted line)
    user_text: str | None = None  # the caller's words, once known (set up front for DTMF)
    phase: TurnPhase = TurnPhase.SPECULATIVE
    marks: dict[str, float] = field(default_factory=dict)  # latency marks (metrics.MARKS)
    stt_start: float | None = None
    published_user: bool = False  # the caller's words are in transcript and history
    end_call: bool = False  # the LLM asked to hang up after this reply
    transfer_to: str | None = None  # the allowed target the LLM asked to be handed to
    dtmf_out: str | None = None  # keys the LLM asked to press after this reply
    fallback_reason: str | None = None
    held_deltas: list[str] = field(default_factory=list)  # reply text streamed before commit
    utterance: Utterance | None = None  # its audio on the way out
    end_of_turn: str = ""  # what decided the caller's turn was over (see turn_detection)
    stt_stream: Any = None  # the utterance's STT stream: the final reuses its committed part

    @property
    def released(self) -> bool:
        return self.phase in _RELEASED

    @property
    def finished(self) -> bool:
        return not TRANSITIONS[self.phase]

    def _move(self, to: TurnPhase) -> None:
        if to not in TRANSITIONS[self.phase]:
            raise IllegalTransition(f"turn {self.no}: {self.phase.value} -> {to.value}")
        self.phase = to

    def commit(self, now: float) -> None:
        """The end of turn: the reply is released to the caller."""
        self._move(TurnPhase.COMMITTED)
        self.marks["endpoint"] = now

    def take_held(self) -> list[str]:
        """The reply text streamed while the turn was speculative, to publish on commit."""
        held, self.held_deltas = self.held_deltas, []
        return held

    def reply_text(self, text: str) -> bool:
        """Reply text as the LLM streams it: True to show it now, False if it is held."""
        if self.released:
            return True
        self.held_deltas.append(text)
        return False

    def start_speaking(self, now: float) -> None:
        self._move(TurnPhase.SPEAKING)
        self.marks["first_audio_out"] = now

    def discard(self) -> None:
        self._move(TurnPhase.DISCARDED)

    def interrupt(self) -> None:
        self._move(TurnPhase.INTERRUPTED)

    def finish(self) -> None:
        self._move(TurnPhase.PLAYED)


class TurnBook:
    """Where the live turns are: at most one speculative, at most one released and unfinished.

    ``pending`` holds the speculative turn (it stays there, DISCARDED, when its final STT
    found no speech, until the end of turn or the next speculation takes it out);
    ``speaking`` holds the committed turn being produced or played.
    """

    def __init__(self) -> None:
        self.pending: Turn | None = None
        self.speaking: Turn | None = None
        self._seq = 0

    def _next_no(self) -> int:
        self._seq += 1
        return self._seq

    def speculate(self, audio: np.ndarray | None = None, user_text: str | None = None) -> Turn:
        """A reply to prepare but hold; it takes the pending slot (empty it first)."""
        turn = Turn(self._next_no(), audio=audio, user_text=user_text)
        self.pending = turn
        return turn

    def scripted(self) -> Turn:
        """A fixed line (welcome, prompts): committed from birth, no caller words."""
        turn = Turn(self._next_no(), phase=TurnPhase.COMMITTED)
        self.speaking = turn
        return turn

    def take_pending(self) -> Turn | None:
        """Drop the speculative turn (superseded or the caller went on); returns it."""
        turn, self.pending = self.pending, None
        if turn is not None and turn.phase is TurnPhase.SPECULATIVE:
            turn.discard()
        return turn

    def commit(self, now: float) -> Turn | None:
        """The end of turn: the pending turn, if still alive, becomes the speaking one."""
        turn, self.pending = self.pending, None
        if turn is None or turn.phase is TurnPhase.DISCARDED:
            return None
        turn.commit(now)
        self.speaking = turn
        return turn

    def no_speech(self, turn: Turn) -> None:
        """The final STT found no words: the turn ends unheard."""
        turn.discard()
        self._release(turn)

    def interrupt(self) -> Turn | None:
        """Barge-in: the speaking turn (if any) is cut; returns it."""
        turn, self.speaking = self.speaking, None
        if turn is not None:
            turn.interrupt()
        return turn

    def finish(self, turn: Turn) -> None:
        """All of the turn's audio was played."""
        turn.finish()
        self._release(turn)

    def _release(self, turn: Turn) -> None:
        if self.speaking is turn:
            self.speaking = None
