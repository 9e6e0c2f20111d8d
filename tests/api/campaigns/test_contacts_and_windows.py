"""Contact parsing and calling windows: pure functions, no server."""

from datetime import UTC, datetime

import pytest

from api.campaigns.contacts import ContactsError, parse_csv, validate_rows
from api.campaigns.dispatcher import in_window
from api.live.sse import comment, format_event, parse_stream


def test_rows_are_accepted_or_rejected_with_a_reason_never_dropped() -> None:
    rows = [
        {"phone_number": "+14155550123", "name": "Ann"},
        {"phone_number": "415-555-0199"},  # no country code
        {"phone_number": "+1 (415) 555-0124", "name": "Bob"},  # formatting is cleaned
        {"phone_number": "+14155550123"},  # duplicate of row 1
        {"name": "no number"},
        "not an object",
    ]
    parsed = validate_rows(rows)
    assert [p for p, _ in parsed.accepted] == ["+14155550123", "+14155550124"]
    assert parsed.accepted[1][1] == {"name": "Bob"}
    reasons = {r.row: r.reason for r in parsed.rejected}
    assert set(reasons) == {2, 4, 5, 6}
    assert "E.164" in reasons[2] and "duplicate" in reasons[4] and "missing" in reasons[5]
    assert len(parsed.accepted) + len(parsed.rejected) == len(rows)


def test_numbers_already_in_the_campaign_are_duplicates() -> None:
    parsed = validate_rows([{"phone": "+14155550123"}], existing={"+14155550123"})
    assert not parsed.accepted and parsed.rejected[0].reason == "duplicate phone_number"


def test_csv_columns_become_variables() -> None:
    rows = parse_csv("\ufeffPhone;First Name;Plan\n+14155550123;Ann;gold\n\n+14155550124;Bob;\n")
    assert rows == [
        {"phone": "+14155550123", "first name": "Ann", "plan": "gold"},
        {"phone": "+14155550124", "first name": "Bob", "plan": ""},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("name,city\nAnn,Paris\n", "no phone column"), ("phone\n", "no rows")],
)
def test_unusable_csv_is_an_error_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ContactsError, match=message) as err:
        parse_csv(text)
    assert err.value.field == "contacts_csv"


def test_calling_window_is_evaluated_in_the_campaign_timezone() -> None:
    window = {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}
    # Monday 2026-11-23 15:30 UTC is 10:30 in New York (open) and 00:30 Tuesday in Tokyo.
    t = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert in_window(t, "America/New_York", window)
    assert not in_window(t, "Asia/Tokyo", window)
    # Saturday is closed even at 10:00 local.
    sat = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert not in_window(sat, "America/New_York", window)


def test_a_window_past_midnight_belongs_to_the_day_it_started() -> None:
    night = {"start": "22:00", "end": "06:00", "days": [4]}  # Friday night only
    assert in_window(datetime(2026, 11, 27, 23, 0, tzinfo=UTC), "UTC", night)  # Fri 23:00
    assert in_window(datetime(2026, 11, 28, 5, 0, tzinfo=UTC), "UTC", night)  # Sat 05:00
    assert not in_window(datetime(2026, 11, 28, 23, 0, tzinfo=UTC), "UTC", night)  # Sat 23:00
    assert not in_window(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), "UTC", night)


def test_sse_framing_round_trips() -> None:
    raw = (
        format_event({"a": 1}, event="summary", id="1")
        + comment()
        + format_event("line one\nline two", event="note")
    ).decode()
    assert raw.startswith('id: 1\nevent: summary\ndata: {"a":1}\n\n')
    events = parse_stream(raw)
    assert events == [
        {"id": "1", "event": "summary", "data": '{"a":1}'},
        {"event": "note", "data": "line one\nline two"},
    ]
    with pytest.raises(ValueError):
        format_event("x", event="bad\nname")
