"""The caller speaking over the agent, as a pure state machine: flags and texts in."""

from __future__ import annotations

import numpy as np

from voice_core.config import EndpointingConfig
from voice_core.playout import Playout
from voice_core.turn_detection.overlap import (
    CheckWords,
    IgnoredSound,
    InterruptAgent,
    Lexicon,
    Overlap,
    OverlapStarted,
    PauseAgent,
    ResumeAgent,
)
from voice_core.turn_detection.policy import fresh_partial

CFG = EndpointingConfig()  # the shipped defaults: pause at 160 ms voiced


def run(machine: Overlap, flags: list[bool], speaking: bool = True) -> list[object]:
    out: list[object] = []
    for f in flags:
        out.extend(machine.push(f, speaking))
    return out


def ms(n: int, voiced: bool) -> list[bool]:
    return [voiced] * (n // 20)


def test_speech_over_the_agent_pauses_it_within_the_stop_budget() -> None:
    m = Overlap(CFG)
    actions = run(m, ms(100, False) + ms(300, True))
    kinds = [type(a) for a in actions]
    assert kinds == [OverlapStarted, PauseAgent, CheckWords]
    pause = actions[1]
    assert pause.onset_frame == 5 and pause.stop_ms <= 200
    assert m.deciding


def test_a_backchannel_resumes_once_its_words_cover_the_sound() -> None:
    m = Overlap(CFG)
    run(m, ms(200, True))
    early = m.words("Uh", upto_frame=m.frame)  # a partial of the first syllable
    assert early == []
    actions = run(m, ms(200, True) + ms(200, False))
    assert isinstance(actions[-1], CheckWords)  # the sound is over: a transcript of all of it
    [resume] = m.words("Uh-huh.", upto_frame=actions[-1].frame)
    assert isinstance(resume, ResumeAgent) and "backchannel" in resume.why
    assert resume.talked_over_ms > 0 and not m.deciding


def test_a_stale_transcript_does_not_decide() -> None:
    m = Overlap(CFG)
    run(m, ms(200, True))
    taken_at = m.frame
    run(m, ms(300, True) + ms(200, False))
    assert m.words("Yeah.", upto_frame=taken_at) == []  # does not cover the end of the sound
    [resume] = m.words("Yeah, okay.", upto_frame=m.frame)
    assert isinstance(resume, ResumeAgent)


def test_real_words_interrupt_as_soon_as_they_are_heard() -> None:
    m = Overlap(CFG)
    run(m, ms(300, True))
    [stop] = m.words("Sorry, what time on Saturday", upto_frame=m.frame)
    assert isinstance(stop, InterruptAgent) and "Saturday" in stop.why


def test_one_short_word_that_is_not_a_backchannel_interrupts_at_the_end() -> None:
    m = Overlap(CFG)
    run(m, ms(300, True))
    assert m.words("Wait", upto_frame=m.frame) == []  # one word while still speaking: wait
    [stop] = run(m, ms(200, False))  # the sound is over and that word covered all of it
    assert isinstance(stop, InterruptAgent)


def test_no_words_is_a_false_interruption() -> None:
    m = Overlap(CFG)
    check = run(m, ms(300, True) + ms(200, False))[-1]
    [resume] = m.words("", upto_frame=check.frame)  # the STT: no speech (a cough)
    assert isinstance(resume, ResumeAgent) and "false interruption" in resume.why
    m2 = Overlap(CFG)
    check = run(m2, ms(300, True) + ms(200, False))[-1]
    [resume] = m2.words("[coughing]", upto_frame=check.frame)
    assert isinstance(resume, ResumeAgent)


def test_long_speech_interrupts_whatever_the_words() -> None:
    m = Overlap(CFG)
    actions = run(m, ms(1100, True))
    assert [type(a) for a in actions][:4] == [
        OverlapStarted,
        PauseAgent,
        CheckWords,
        InterruptAgent,
    ]


def test_no_transcript_in_time_resumes() -> None:
    m = Overlap(CFG)
    actions = run(m, ms(300, True) + ms(1600, False))
    assert isinstance(actions[-1], ResumeAgent) and "within" in actions[-1].why


def test_a_click_is_ignored_and_the_agent_never_pauses() -> None:
    m = Overlap(CFG)
    actions = run(m, ms(100, True) + ms(300, False))
    assert [type(a) for a in actions] == [OverlapStarted, IgnoredSound]


def test_nothing_happens_while_the_agent_is_silent() -> None:
    m = Overlap(CFG)
    assert run(m, ms(600, True), speaking=False) == []


def test_the_lexicon_matches_every_spelling_and_nothing_more() -> None:
    lex = Lexicon(CFG.backchannel_phrases)
    for said in ["Uh-huh.", "Mm-hmm", "yeah, okay", "Right, got it. Thank you!", "Oh, I see."]:
        assert lex.other_words(said) == [], said
    assert lex.other_words("No, that's wrong") == ["no", "that's", "wrong"]
    assert lex.other_words("yeah but Tuesday") == ["but", "tuesday"]


def test_a_partial_counts_only_if_it_reached_the_pause() -> None:
    assert fresh_partial("I would like to", 16000, 16000 + 320) == "I would like to"
    assert fresh_partial("I would like to", 8000, 16000) == ""


def test_resume_restarts_at_the_clause_start_or_a_gap_between_words() -> None:
    playout = Playout(0.06)
    utt = playout.open()
    loud, quiet = np.full(320, 3000, np.int16), np.zeros(320, np.int16)
    first = [loud] * 30  # 600 ms clause
    second = [loud] * 20 + [quiet] + [loud] * 49  # a gap between words at frame 50
    playout.push(utt, first)
    utt.add_clause("Our clinic is open", 30)
    playout.push(utt, second)
    utt.add_clause("from eight in the morning until six", 70)
    utt.held_at = 36  # paused 120 ms into the second clause
    assert playout.resume_frame(utt, talked_over=4, max_rewind=30) == 30  # clause start
    utt.held_at = 90
    assert playout.resume_frame(utt, talked_over=10, max_rewind=30) == 50  # the gap
