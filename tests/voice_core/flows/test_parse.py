"""The flow's ear for values: how callers dictate days, times, numbers and names."""

from __future__ import annotations

import pytest

from voice_core.flows.parse import (
    Heard,
    Refused,
    clock_time,
    digits,
    enum_value,
    group_digits,
    parse_slot,
    person_name,
    spelled,
    weekday,
    yes_no,
)
from voice_core.flows.spec import SlotSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five five five, one two three, four five six seven", "5551234567"),
        ("555-123-4567", "5551234567"),
        ("it's double four, oh, seven one", "44071"),
        ("My number is 555 0 1 9 9.", "5550199"),
        ("triple eight", "888"),
    ],
)
def test_dictated_digits(text: str, expected: str) -> None:
    assert digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 am", (10, 0)),
        ("at 2 pm please", (14, 0)),
        ("ten thirty", (10, 30)),
        ("10:45 in the morning", (10, 45)),
        ("half past two", (14, 30)),
        ("quarter to three", (14, 45)),
        ("around 3", (15, 0)),
        ("noon works", (12, 0)),
        ("Tuesday morning", (9, 0)),
    ],
)
def test_clock_times(text: str, expected: tuple[int, int]) -> None:
    found = clock_time(text)
    assert found is not None and found[:2] == expected


def test_a_dictated_phone_number_is_not_a_time() -> None:
    assert clock_time("5 5 5 1 2 3 4 5 6 7") is None


def test_weekdays_last_mention_wins_and_relative_days_need_today() -> None:
    assert weekday("Tuesday, no wait, Wednesday") == "wednesday"
    assert weekday("no, Wednesday") == "wednesday"
    assert weekday("not Monday") is None
    assert weekday("tomorrow", today=0) == "tuesday"
    assert weekday("the day after tomorrow", today=5) == "monday"
    assert weekday("tomorrow") is None


def test_yes_and_no() -> None:
    assert yes_no("Yes, that's right.") is True
    assert yes_no("Yeah.") is True
    assert yes_no("No, Wednesday.") is False
    assert yes_no("That's not right") is False
    assert yes_no("No problem") is True
    assert yes_no("Wednesday at ten") is None


def test_enum_by_synonym_and_correction() -> None:
    values = {"cleaning": ["clean", "cleaned"], "filling": ["cavity"]}
    assert enum_value("I need my teeth cleaned", values) == "cleaning"
    assert enum_value("not a filling, a cleaning", values) == "cleaning"
    assert enum_value("I think I have a cavity", values) == "filling"
    assert enum_value("What time do you open?", values) is None


def test_a_half_past_the_ear_half_heard() -> None:
    for heard in ("F past 3.", "Have passed three.", "alf past three", "half past 3"):
        assert clock_time(heard)[:2] == (15, 30), heard  # 3, an afternoon hour
    assert clock_time("At 3, I'll pass by.")[:2] == (15, 0)  # not a half past


def test_a_near_miss_of_the_ear_still_names_the_value() -> None:
    values = {"filling": ["filling", "cavity"], "emergency": ["hurts", "swollen"]}
    assert enum_value("I'd like to book a fill-in.", values) == "filling"  # heard on a call
    assert enum_value("I'm here for a fillin", values) == "filling"
    assert enum_value("I think I lost a feeling while eating.", values) == "filling"  # heard
    assert enum_value("not a fillin", values) is None
    # near is not close: "hours" is one letter from "hurts"
    assert enum_value("What are your opening hours?", values) is None
    # two words joined spell, they do not sound: "what are" is not "whiter"
    assert enum_value("What are your opening hours?", {"whitening": ["whiter"]}) is None


def test_names_spelled_and_said() -> None:
    assert spelled("Smith, S-M-I-T-H.") == "Smith"
    assert spelled("k o w a l s k i") == "Kowalski"
    assert person_name("My name is John Smith.", asked=False) == "John Smith"
    # the spelling decides how a misheard surname is written
    assert person_name("John Smyth, S-M-I-T-H", asked=True) == "John Smith"
    assert person_name("Maria Kowalski.", asked=True) == "Maria Kowalski"
    assert person_name("I'd like a cleaning", asked=False) is None


def test_letters_the_ear_wrote_as_words_still_spell() -> None:
    # Whisper tiny over a phone line, Piper saying "It's Peter Kowalski. K, O, W, A, ..."
    heard = "It's Peter Colspy. Hey, oh, W, A, L, S, K, I."
    assert spelled(heard) == "Kowalski"
    assert person_name(heard, asked=True) == "Peter Kowalski"
    assert spelled("Walsh, double you, A, L, S, H") == "Walsh"
    # a sound-alike letter is the ear, not a different name
    assert person_name("Smith, S, N, I, T, H.", asked=True) == "Smith"
    # letter-like words in a sentence are words
    assert spelled("Oh, you see, I need a cleaning.") is None


def test_a_refused_value_says_why() -> None:
    day = SlotSpec(name="day", type="weekday", prompt="Which day?", allowed=["monday"])
    assert parse_slot(day, "Sunday", asked=True) == Refused("Sunday", "Sunday is not available")
    assert parse_slot(day, "Monday", asked=True) == Heard("Monday", "Monday")
    time = SlotSpec(name="time", type="time", prompt="When?", between=("08:00", "17:30"))
    assert isinstance(parse_slot(time, "at 7 pm", asked=True), Refused)
    assert parse_slot(time, "at 10 am", asked=True) == Heard("10:00", "at 10 am")


def test_phone_length_is_checked_and_read_back_grouped() -> None:
    phone = SlotSpec(name="phone", type="phone", prompt="Number?", min_digits=10, max_digits=11)
    assert isinstance(parse_slot(phone, "five five five", asked=True), Refused)
    heard = parse_slot(phone, "555 123 4567", asked=True)
    assert heard == Heard("5551234567", "5 5 5, 1 2 3, 4 5 6 7")
    # not asked for: a few digits are not a phone number
    assert parse_slot(phone, "at 10 30", asked=False) is None
    assert group_digits("5550199") == "5 5 5, 0 1 9 9"


def test_a_bare_number_is_not_a_time_without_a_cue() -> None:
    # "4 pm then." came out of the ear as "14 and then.": not 2 pm
    assert clock_time("14 and then.") is None
    assert clock_time("at 14:30") is not None and clock_time("at 14:30")[:2] == (14, 30)
