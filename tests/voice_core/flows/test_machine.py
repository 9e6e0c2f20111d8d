"""The flow state machine, turn by turn: what the caller hears and what is collected."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.demo_flow import DENTAL_FLOW
from voice_core.flows.machine import CallTool, EndCall, FlowMachine, Say, Transfer, Waiting
from voice_core.flows.spec import FlowSpec


def said(outputs: list) -> str:
    return " ".join(o.text for o in outputs if isinstance(o, Say))


def booked_machine() -> FlowMachine:
    m = FlowMachine(DENTAL_FLOW, today=0)
    m.start()
    return m


def test_a_booking_is_collected_read_back_and_ends_the_call() -> None:
    m = FlowMachine(DENTAL_FLOW, today=0)
    assert said(m.start()) == "Thank you for calling Bright Smile Dental. How can I help you today?"
    assert said(m.hear("Hi, I'd like to book a teeth cleaning, please.")) == (
        "Which day would suit you?"
    )
    assert "what time" in said(m.hear("Thursday works.")).lower()
    assert "last name" in said(m.hear("At 2 pm."))
    assert "phone number" in said(m.hear("Anna Lee, L-E-E."))
    assert said(m.hear("five five five, one two three, four five six seven")) == (
        "I have 5 5 5, 1 2 3, 4 5 6 7. Is that right?"
    )
    assert said(m.hear("Yes.")) == (
        "So that's a cleaning on Thursday at 2 pm, for Anna Lee. Shall I book it?"
    )
    out = m.hear("Yes please.")
    assert "you're booked" in said(out) and isinstance(out[-1], EndCall)
    assert m.values() == {
        "service": "cleaning",
        "day": "Thursday",
        "time": "14:00",
        "name": "Anna Lee",
        "phone": "5551234567",
    }
    assert m.state.completed and m.done


def test_several_values_in_one_answer_and_a_correction_at_the_read_back() -> None:
    m = booked_machine()
    out = m.hear("Can I get a check-up on Monday at 10 am? My name is John Smith.")
    assert "phone number" in said(out)
    m.hear("555 123 4567")
    m.hear("yes")
    out = m.hear("No, Wednesday.")
    assert said(out).startswith("Got it. So that's a check-up on Wednesday at 10 am")
    assert m.state.waiting is Waiting.NODE_CONFIRM


def test_a_wrong_read_back_of_the_number_is_asked_again() -> None:
    m = booked_machine()
    m.hear("a cleaning on Monday at 9 am, my name is Ann Bell")
    m.hear("555 123 4567")
    assert said(m.hear("No.")).startswith("Sorry about that. And what's the best phone number")
    assert "5 5 5, 9 8 7" in said(m.hear("555 987 6543"))


def test_a_no_without_a_value_asks_what_to_change() -> None:
    m = booked_machine()
    m.hear("a cleaning on Monday at 9 am, my name is Ann Bell")
    m.hear("5551234567")
    m.hear("right")
    assert said(m.hear("No.")) == "Sorry about that. What should I change?"
    assert said(m.hear("The time.")) == "And what time works best for you?"
    assert "at 11 am" in said(m.hear("11 am"))


def test_a_value_out_of_bounds_is_refused_with_the_reason() -> None:
    m = booked_machine()
    m.hear("a cleaning")
    assert (
        said(m.hear("Sunday")) == "Sorry, we're closed on Sundays. Which other day works for you?"
    )
    assert "day" not in m.values()
    assert "what time" in said(m.hear("Saturday then")).lower()


def test_global_questions_are_answered_then_the_question_is_asked_again() -> None:
    m = booked_machine()
    m.hear("a cleaning please")
    out = said(m.hear("What are your opening hours?"))
    assert out.startswith("We're open Monday to Friday") and out.endswith(
        "Which day would suit you?"
    )
    out = m.hear("Actually never mind, goodbye.")
    assert isinstance(out[-1], EndCall) and not m.state.completed


def test_a_caller_who_cannot_be_understood_goes_to_the_fallback_node() -> None:
    m = booked_machine()
    m.hear("a cleaning")
    assert said(m.hear("blah")).startswith("Sorry, I didn't catch that.")
    m.hear("hmm")
    out = m.hear("mmm")
    assert "call us back" in said(out) and isinstance(out[-1], EndCall)
    assert not m.state.completed


def test_a_fork_leaves_the_flow_untouched_until_adopted() -> None:
    m = booked_machine()
    fork = m.fork()
    fork.hear("a cleaning on Tuesday")
    assert m.values() == {}
    m.adopt(fork)
    assert m.values() == {"service": "cleaning", "day": "Tuesday"}


def test_tool_and_transfer_nodes() -> None:
    spec = FlowSpec.model_validate(
        {
            "start": "ask",
            "slots": [{"name": "city", "type": "text", "prompt": "Which city?"}],
            "nodes": [
                {
                    "id": "ask",
                    "collect": ["city"],
                    "tool": {"name": "weather", "arguments": {"q": "{city}"}},
                    "on_tool_error": "human",
                    "next": "tell",
                },
                {"id": "tell", "say": "It is {tools.weather.temp} degrees.", "action": "end_call"},
                {"id": "human", "action": "transfer", "transfer_to": "desk"},
            ],
        }
    )
    m = FlowMachine(spec)
    assert said(m.start()) == "Which city?"
    out = m.hear("Paris")
    assert out == [CallTool(spec.node("ask").tool, {"q": "Paris"})]  # type: ignore[arg-type]
    out = m.tool_done("weather", True, {"temp": 21})
    assert said(out) == "It is 21 degrees." and isinstance(out[-1], EndCall)
    m2 = FlowMachine(spec)
    m2.start()
    m2.hear("Rome")
    assert m2.tool_done("weather", False, "timeout") == [Transfer("desk")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": "nowhere"}, "start: no node 'nowhere'"),
        ({"nodes": [{"id": "a", "next": "b"}]}, "goes to unknown node 'b'"),
        ({"nodes": [{"id": "a", "collect": ["x"]}]}, "unknown slot 'x'"),
        ({"nodes": [{"id": "a", "say": "Hi {who}"}]}, "unknown value {who}"),
    ],
)
def test_a_broken_flow_is_refused_naming_what_is_wrong(change: dict, message: str) -> None:
    base = {"start": "a", "nodes": [{"id": "a", "say": "Hi", "action": "end_call"}]}
    with pytest.raises(ValidationError, match=message):
        FlowSpec.model_validate({**base, **change})


def test_the_ears_partials_are_a_second_opinion_for_a_value_the_final_missed() -> None:
    """The final transcript heard "Our state, please." where the partials heard
    "Thursday, please." (recorded from the live ear): the flow asked for a day, so it
    takes the day from the partial."""
    m = booked_machine()
    m.hear("I'd like a cleaning.")
    out = m.hear("Our state, please.", alternatives=["Thursday.", "Thursday, please."])
    assert m.values()["day"] == "Thursday" and "what time" in said(out).lower()
    # a final that has the value wins over the partials
    m2 = booked_machine()
    m2.hear("I'd like a cleaning.")
    m2.hear("Friday, please.", alternatives=["Thursday."])
    assert m2.values()["day"] == "Friday"
