"""Loop detection on plain words: what the decoder retries on and the benchmark counts."""

from __future__ import annotations

from voice_core.stt.text import (
    compression_ratio,
    cut_repetition,
    new_repetition,
    repeated_phrase,
    words,
)


def test_words_drop_case_and_punctuation() -> None:
    assert words("Press 5 to Leave A Message.") == ["press", "5", "to", "leave", "a", "message"]


def test_the_loops_the_issue_saw_are_found() -> None:
    assert repeated_phrase(words("Press 5 to leave a message. Press 5 to Leave A Message")) == (
        "press",
        "5",
        "to",
        "leave",
        "a",
        "message",
    )
    assert repeated_phrase(words("activated, activated. Activated, activated,")) == ("activated",)
    assert repeated_phrase(words("Goodbye. Good bye, goodbye")) is None  # spelled apart
    assert repeated_phrase(words("7, seven. Seven...")) is None  # three spellings, two alike


def test_people_say_a_word_twice_without_a_loop() -> None:
    assert repeated_phrase(words("No, no, that is fine.")) is None
    assert repeated_phrase(words("Bye bye.")) is None
    assert repeated_phrase(words("no no no")) == ("no",)


def test_against_a_reference_a_doubled_word_is_new() -> None:
    assert new_repetition("please please", "yes please") == ("please",)
    assert new_repetition("bye bye", "bye bye") is None
    assert new_repetition("press 1 press 1", "press 1") == ("press", "1")
    assert new_repetition("one moment please", "one moment please") is None


def test_cut_repetition_keeps_the_first_saying() -> None:
    assert cut_repetition("a 28 8 a 28 8 a".split()) == "a 28 8".split()
    assert cut_repetition("have at least a modem".split()) == "have at least a modem".split()
    assert cut_repetition("7 7 7 7".split()) == ["7"]
    assert cut_repetition("no no".split()) == ["no", "no"]


def test_compression_ratio_flags_loops_not_speech() -> None:
    loop = " ".join(["Press 5 to leave a message."] * 6)
    assert compression_ratio(loop) > 2.4
    assert compression_ratio("Please enter your agent number followed by the pound key.") < 2.4
    assert compression_ratio("") == 0.0


def test_a_dictated_number_repeats_digits_without_a_loop() -> None:
    """ "5 5 5, 4 4 4, 1 2 1 2" is a phone number, not the decoder looping (it used to be
    cut to "5"); the same digit said on and on still is a loop."""
    dictated = words("5, 5, 5, 4, 4, 4, 1, 2, 1, 2")
    assert repeated_phrase(dictated) is None
    assert cut_repetition(dictated) == dictated
    assert repeated_phrase(words("oh oh seven")) is None
    assert repeated_phrase(words("5 5 5 5 5 5 5 5")) == ("5",)
