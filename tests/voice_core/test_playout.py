"""Playout pacing and what the caller heard, on a fake clock: no task, no sleep."""

from __future__ import annotations

import numpy as np
import pytest

from tests.voice_core.fakes import FakeClock, words
from voice_core.chunker import ClauseChunker
from voice_core.playout import (
    Playout,
    SendFrame,
    Utterance,
    UtterancePlayed,
    UtteranceSent,
    WaitUntil,
)

LEAD = 0.06  # the session tests' playout lead
FRAMES_PER_WORD = 3  # FakeTTS: 60 ms of speech per word


def frames(n: int) -> list[np.ndarray]:
    return [np.full(320, i, np.int16) for i in range(n)]


def run(playout: Playout, clock: FakeClock, until: float = 1e9) -> list[tuple[float, object]]:
    """Do what the session's playout loop does, sleeping by moving the fake clock."""
    done: list[tuple[float, object]] = []
    while (step := playout.poll(clock())) is not None:
        if isinstance(step, WaitUntil):
            if step.t > until:
                break
            clock.t = step.t
            continue
        done.append((clock(), step))
    return done


def sent_at(steps: list[tuple[float, object]]) -> list[float]:
    return [round(t, 3) for t, s in steps if isinstance(s, SendFrame)]


def speak(playout: Playout, text: str) -> Utterance:
    """An utterance queued the way the reply pipeline queues one: clause by clause."""
    utt = playout.open()
    chunker = ClauseChunker()
    clauses = [c for d in words(text) for c in chunker.push(d.text)] + chunker.flush()
    for clause in clauses:
        n = FRAMES_PER_WORD * len(clause.split())
        playout.push(utt, frames(n))
        utt.add_clause(clause, n)
    playout.close(utt)
    return utt


def test_frames_go_out_at_most_the_lead_ahead_of_playback() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    utt = playout.open()
    playout.push(utt, frames(10))
    playout.close(utt)
    assert playout.queued_frames == 10
    steps = run(playout, clock)
    # The k-th frame is heard at k * 20 ms and handed out 60 ms before that.
    assert sent_at(steps) == [0.0, 0.0, 0.0, 0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12]
    assert [s.pcm[0] for _, s in steps if isinstance(s, SendFrame)] == list(range(10))
    # "handed out" comes with the last frame, "played" when the caller heard it.
    (t_sent, _), (t_played, played) = [
        (t, s) for t, s in steps if isinstance(s, UtteranceSent | UtterancePlayed)
    ]
    assert t_sent == pytest.approx(0.12) and t_played == pytest.approx(0.2)
    assert isinstance(played, UtterancePlayed) and utt.played and utt.released == 10
    assert playout.queued_frames == 0 and playout.playing is None


def test_poll_says_when_the_next_frame_is_due() -> None:
    clock, playout = FakeClock(5.0), Playout(LEAD)
    utt = playout.open()
    playout.push(utt, frames(6))
    assert len(run(playout, clock, until=5.001)) == 4  # the lead's worth goes out at once
    assert playout.playing is utt
    step = playout.poll(clock())
    assert isinstance(step, WaitUntil) and step.t == pytest.approx(5.02)
    assert playout.poll(5.01) == step  # not yet
    assert isinstance(playout.poll(step.t), SendFrame)


def test_the_playback_clock_restarts_after_the_queue_runs_dry() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    first = playout.open()
    playout.push(first, frames(5))
    run(playout, clock)  # heard until 0.1 s
    clock.t = 0.3  # the next clause took 200 ms to synthesize: the caller heard silence
    playout.push(first, frames(5))
    steps = run(playout, clock)
    # No burst to "catch up": a new run starts at 0.3 s with the same lead.
    assert sent_at(steps) == [0.3, 0.3, 0.3, 0.3, 0.32]
    assert first.played_base == 5
    assert playout.played_frames(first, 0.3) == 5
    assert playout.played_frames(first, 0.345) == 7  # 5 before the gap, 2 since
    assert playout.played_frames(first, 9.0) == 10  # never more than was handed out


def test_an_utterance_with_no_audio_is_played_at_once() -> None:
    clock, playout = FakeClock(2.0), Playout(LEAD)
    utt = playout.open()
    playout.close(utt)
    steps = run(playout, clock)
    assert [type(s) for _, s in steps] == [UtteranceSent, UtterancePlayed]
    assert clock() == 2.0


def test_utterances_play_one_after_the_other() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    a, b = playout.open(), playout.open()
    assert (a.id, b.id) == (1, 2)
    for utt in (a, b):
        playout.push(utt, frames(4))
        playout.close(utt)
    steps = run(playout, clock)
    order = [(type(s).__name__, s.utterance.id) for _, s in steps]
    assert order == [("SendFrame", 1)] * 4 + [
        ("UtteranceSent", 1),
        ("UtterancePlayed", 1),
        *[("SendFrame", 2)] * 4,
        ("UtteranceSent", 2),
        ("UtterancePlayed", 2),
    ]
    # b starts when a has been heard to the end (0.08 s), on a fresh clock.
    assert sent_at(steps)[4:] == [0.08, 0.08, 0.08, 0.08]


REPLY = ("Our clinic is open from eight in the morning, until six in the evening. " * 3).strip()


def test_barge_in_keeps_the_words_heard_before_the_cut() -> None:
    # The fake-clock twin of test_session's barge-in test: the caller hears 0.3 s.
    clock, playout = FakeClock(), Playout(LEAD)
    utt = speak(playout, REPLY)
    assert utt.clauses[0] == ("Our clinic is open from eight in the morning,", 27)
    run(playout, clock, until=0.31)
    clock.t = 0.31
    assert utt.released == 19  # up to 0.38 s of playback: at most the lead ahead of 0.31 s
    heard = playout.cut(utt, clock())
    # 15 of the first clause's 27 frames were heard: 5 of its 9 words.
    assert heard == "Our clinic is open from"
    assert REPLY.split()[: len(heard.split())] == heard.split()
    assert utt.cancelled and playout.playing is None
    assert run(playout, clock) == []  # nothing more of it goes out, it never "played"
    assert not utt.played and playout.queued_frames == 0


def test_heard_text_spans_whole_clauses_then_cuts_the_current_one() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    utt = speak(playout, REPLY)
    assert utt.clauses[1] == ("until six in the evening.", 15)
    run(playout, clock, until=0.71)
    clock.t = 0.71  # 35 frames: the first clause (27), 8 of the second's 15 -> 2 of 5 words
    assert playout.heard_text(utt, clock()) == (
        "Our clinic is open from eight in the morning, until six"
    )
    run(playout, clock, until=0.85)
    clock.t = 0.85  # 42 frames: the first clause and the second, whole
    assert playout.heard_text(utt, clock()) == (
        "Our clinic is open from eight in the morning, until six in the evening."
    )


def test_a_cut_restarts_the_clock_for_the_next_utterance() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    cut = playout.open()
    playout.push(cut, frames(20))
    run(playout, clock, until=0.1)
    clock.t = 0.1
    assert cut.released == 9  # handed out up to 0.18 s of playback, heard up to 0.1 s
    assert playout.cut(cut, clock()) == ""  # (no clauses recorded: no words)
    clock.t = 0.12
    reply = playout.open()
    playout.push(reply, frames(5))
    # The transport dropped the rest of the cut utterance, so the reply is not paced
    # behind it (that would be 0.12, 0.14, ... 0.2): a new run starts now.
    assert sent_at(run(playout, clock)) == [0.12, 0.12, 0.12, 0.12, 0.14]
    assert playout.played_frames(reply, 0.165) == 2


def test_a_cut_with_nothing_playing_only_stops_the_clock() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    assert playout.cut(None, clock()) == ""
    assert playout.playing is None and run(playout, clock) == []


def test_frames_of_a_cut_utterance_are_never_queued_or_sent() -> None:
    clock, playout = FakeClock(), Playout(LEAD)
    utt = playout.open()
    playout.push(utt, frames(3))
    playout.cut(utt, clock())
    playout.push(utt, frames(3))  # the TTS task had a chunk in flight
    playout.close(utt)
    assert utt.queued == 3 and playout.queued_frames == 0
    assert run(playout, clock) == []
