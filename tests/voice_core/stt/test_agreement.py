"""LocalAgreement-2 on a sliding window, sans-I/O: hypotheses in, committed prefix out."""

from __future__ import annotations

from voice_core.stt.agreement import LocalAgreement
from voice_core.stt.decoding import Segment


def seg(start: float, end: float, text: str) -> Segment:
    return Segment(start, end, text)


def test_a_word_is_committed_when_two_hypotheses_in_a_row_agree() -> None:
    la = LocalAgreement()
    u = la.push((seg(0, 1, "Hello, I would"),), 1.0)
    assert u.committed == "" and u.tentative == "Hello, I would"
    u = la.push((seg(0, 2, "Hello I would like to"),), 2.0)
    assert u.committed == "Hello I would"  # as the newer hypothesis writes it
    assert u.tentative == "like to"
    assert u.text == "Hello I would like to"


def test_the_committed_prefix_never_changes() -> None:
    la = LocalAgreement()
    la.push((seg(0, 1, "I want to book"),), 1.0)
    la.push((seg(0, 2, "I want to book a"),), 2.0)
    assert la.committed == "I want to book"
    # The decoder changes its mind about committed words: they stay.
    u = la.push((seg(0, 2.5, "I wanted a book a teeth"),), 2.5)
    assert u.committed.startswith("I want to book")
    u = la.push((seg(0, 3, "I want to book a teeth cleaning"),), 3.0)
    assert u.committed.startswith("I want to book")


def test_punctuation_alone_is_never_committed() -> None:
    la = LocalAgreement()
    la.push((seg(0, 0.3, "..."),), 0.3)
    u = la.push((seg(0, 0.6, "..."),), 0.6)
    assert u.committed == ""


def test_a_looping_partial_commits_no_loop() -> None:
    la = LocalAgreement()
    la.push((seg(0, 2, "a 28.8 a 28.8 a 28.8"),), 2.0)
    u = la.push((seg(0, 2.3, "a 28.8 a 28.8 a 28.8 a"),), 2.3)
    assert u.committed == "a 28.8"


def test_a_split_word_does_not_stop_commits() -> None:
    la = LocalAgreement()
    la.push((seg(0, 1, "Agent login please"),), 1.0)
    la.push((seg(0, 1.5, "Agent login please enter"),), 1.5)
    assert la.committed == "Agent login please"
    la.push((seg(0, 2, "Agent log in please enter your"),), 2.0)
    u = la.push((seg(0, 2.5, "Agent log in please enter your agent"),), 2.5)
    assert u.committed == "Agent login please enter your"


def test_the_window_is_cut_after_a_committed_segment_once_long() -> None:
    la = LocalAgreement(trim_after_s=6.0)
    first = seg(0.0, 4.0, "Please enter your agent number.")
    la.push((first, seg(4.0, 7.0, "followed by")), 7.0)
    u = la.push((first, seg(4.0, 7.5, "followed by the pound")), 7.5)
    assert u.committed == "Please enter your agent number. followed by"
    assert u.window_start_s == 4.0  # the audio of the first segment is never decoded again
    # The next window's times start at the cut; nothing committed is lost.
    u = la.push((seg(0.0, 3.5, "followed by the pound key."),), 3.5)
    assert u.committed == "Please enter your agent number. followed by"
    assert u.tentative == "the pound key."


def test_a_short_window_is_never_cut() -> None:
    la = LocalAgreement(trim_after_s=6.0)
    s = (seg(0.0, 2.0, "yes"), seg(2.0, 3.0, "please"))
    la.push(s, 3.0)
    u = la.push(s, 3.2)
    assert u.committed == "yes please" and u.window_start_s == 0.0


def test_a_full_window_without_agreement_is_cut_anyway() -> None:
    la = LocalAgreement(trim_after_s=6.0, max_window_s=16.0)
    la.push((seg(0, 8, "one two three"), seg(8, 15, "four five")), 15.0)
    u = la.push((seg(0, 8, "uno dos tres"), seg(8, 16.5, "cuatro cinco")), 16.5)
    assert u.window_start_s == 8.0
    assert u.committed == "uno dos tres"
