"""The turn lifecycle as a pure state machine: phases, transitions and the session's slots."""

from __future__ import annotations

import numpy as np
import pytest

from voice_core.turns import TRANSITIONS, IllegalTransition, Turn, TurnBook, TurnPhase

P = TurnPhase


def turn_in(phase: TurnPhase) -> Turn:
    return Turn(no=1, phase=phase)


def move(turn: Turn, to: TurnPhase) -> None:
    {
        P.COMMITTED: lambda: turn.commit(1.0),
        P.SPEAKING: lambda: turn.start_speaking(2.0),
        P.PLAYED: turn.finish,
        P.INTERRUPTED: turn.interrupt,
        P.DISCARDED: turn.discard,
    }[to]()


def test_a_reply_goes_speculative_committed_speaking_played() -> None:
    turn = Turn(no=1, audio=np.zeros(320, np.int16))
    assert turn.phase is P.SPECULATIVE and not turn.released
    turn.commit(1.5)
    assert turn.phase is P.COMMITTED and turn.released and turn.marks["endpoint"] == 1.5
    turn.start_speaking(1.7)
    assert turn.phase is P.SPEAKING and turn.marks["first_audio_out"] == 1.7
    turn.finish()
    assert turn.phase is P.PLAYED and turn.finished


@pytest.mark.parametrize("start", list(P))
@pytest.mark.parametrize("to", [p for p in P if p is not P.SPECULATIVE])
def test_every_transition_outside_the_table_raises(start: TurnPhase, to: TurnPhase) -> None:
    turn = turn_in(start)
    if to in TRANSITIONS[start]:
        move(turn, to)
        assert turn.phase is to
    else:
        with pytest.raises(IllegalTransition, match=f"{start.value} -> {to.value}"):
            move(turn, to)
        assert turn.phase is start  # a refused transition changes nothing


def test_finished_phases_lead_nowhere_and_every_phase_is_reachable() -> None:
    assert {p for p in P if not TRANSITIONS[p]} == {P.PLAYED, P.INTERRUPTED, P.DISCARDED}
    reachable = {P.SPECULATIVE}
    for targets in TRANSITIONS.values():
        reachable |= targets
    assert reachable == set(P)


def test_reply_text_is_held_until_commit_then_shown_at_once() -> None:
    turn = Turn(no=3)
    assert not turn.reply_text("Sure,")
    assert not turn.reply_text(" one moment.")
    turn.commit(0.0)
    assert turn.take_held() == ["Sure,", " one moment."]
    assert turn.take_held() == []
    assert turn.reply_text(" Anything else?")  # released: shown as it streams
    assert turn.held_deltas == []


def test_book_numbers_every_turn_and_scripted_lines_are_committed_from_birth() -> None:
    book = TurnBook()
    welcome = book.scripted()
    assert welcome.no == 1 and welcome.phase is P.COMMITTED and book.speaking is welcome
    reply = book.speculate(audio=np.zeros(320, np.int16))
    assert reply.no == 2 and book.pending is reply and reply.phase is P.SPECULATIVE


def test_a_speculation_taken_out_is_discarded() -> None:
    book = TurnBook()
    turn = book.speculate(user_text="hello")
    assert book.take_pending() is turn
    assert turn.phase is P.DISCARDED and book.pending is None
    assert book.take_pending() is None
    assert book.commit(1.0) is None  # nothing left to commit


def test_commit_moves_the_pending_turn_into_the_speaking_slot() -> None:
    book = TurnBook()
    turn = book.speculate(user_text="hello")
    assert book.commit(2.0) is turn
    assert book.pending is None and book.speaking is turn
    assert turn.phase is P.COMMITTED and turn.marks["endpoint"] == 2.0
    book.finish(turn)
    assert turn.phase is P.PLAYED and book.speaking is None


def test_no_speech_before_the_end_of_turn_keeps_the_dead_turn_pending_until_commit() -> None:
    # The final STT of a speculation found only noise: nothing is committed at the end of
    # turn, and a new speculation is not started in the meantime (the slot is taken).
    book = TurnBook()
    turn = book.speculate(audio=np.zeros(320, np.int16))
    book.no_speech(turn)
    assert turn.phase is P.DISCARDED and book.pending is turn
    assert book.commit(3.0) is None
    assert book.pending is None and book.speaking is None
    assert "endpoint" not in turn.marks


def test_no_speech_after_the_end_of_turn_frees_the_speaking_slot() -> None:
    book = TurnBook()
    turn = book.speculate(audio=np.zeros(320, np.int16))
    book.commit(1.0)
    book.no_speech(turn)
    assert turn.phase is P.DISCARDED and book.speaking is None


def test_barge_in_interrupts_the_speaking_turn() -> None:
    book = TurnBook()
    assert book.interrupt() is None
    turn = book.scripted()
    turn.start_speaking(0.5)
    assert book.interrupt() is turn
    assert turn.phase is P.INTERRUPTED and book.speaking is None
    with pytest.raises(IllegalTransition):
        book.finish(turn)  # an interrupted turn cannot also have played in full


def test_an_older_turn_finishing_leaves_the_newer_speaking_turn_in_its_slot() -> None:
    book = TurnBook()
    older = book.scripted()
    newer = book.scripted()
    book.finish(older)
    assert book.speaking is newer
