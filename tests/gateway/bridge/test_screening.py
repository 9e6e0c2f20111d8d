"""Screening an outbound call's first seconds (sans-I/O): who answered, and when a
machine records. Frames are counted, so these run in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.bridge.end_status import end_status
from gateway.bridge.screening import render_context
from gateway.calls import CallStatus
from gateway.simulated.callee import beep_tone
from voice_core.answering_machine import (
    MachineAnswered,
    MessageCue,
    PersonAnswered,
    Screening,
    ScreeningLimits,
    ScreeningPhase,
    WordsNeeded,
    machine_phrase,
)
from voice_core.audio.frames import FRAME_SAMPLES
from voice_core.config import VoicemailConfig
from voice_core.end_reasons import CallEnd, EndReason

QUIET = np.zeros(FRAME_SAMPLES, dtype=np.int16)
# A voiced frame with no single pure tone in it (what the VAD calls speech is a flag here).
rng = np.random.default_rng(7)
NOISE = (rng.standard_normal(FRAME_SAMPLES) * 3000).astype(np.int16)


def run(screening: Screening, spans: list[tuple[bool, int]]) -> list[tuple[object, int]]:
    """Feed (voiced, ms) spans; each event with the ms since the answer it came at."""
    out, ms = [], 0
    for voiced, length in spans:
        for _ in range(length // 20):
            ms += 20
            for event in screening.push(NOISE if voiced else QUIET, voiced):
                out.append((event, ms))
    return out


def test_silence_on_answer_is_a_person_waiting_for_us() -> None:
    events = run(Screening(), [(False, 3000)])
    assert [(type(e), ms) for e, ms in events] == [(PersonAnswered, 2000)]


def test_a_short_hello_then_a_pause_is_a_person() -> None:
    events = run(Screening(), [(False, 300), (True, 900), (False, 1500)])
    ((event, ms),) = events
    assert isinstance(event, PersonAnswered) and ms == 300 + 900 + 700


def test_a_greeting_that_talks_on_is_a_machine_then_its_end_is_the_cue() -> None:
    screening = Screening(limits=ScreeningLimits(greeting_end_ms=1500))
    events = run(screening, [(True, 6000), (False, 3000)])
    assert [type(e) for e, _ in events] == [MachineAnswered, MessageCue]
    assert events[0][1] == 3500  # decided while it still talks
    assert events[1][1] == 6000 + 1500 and "greeting ended" in events[1][0].why
    assert screening.phase is ScreeningPhase.DONE
    assert screening.greeting_audio.size == (6000 + 1500) // 20 * FRAME_SAMPLES


def test_the_beep_after_a_greeting_is_the_cue() -> None:
    screening = Screening()
    events = run(screening, [(True, 5000), (False, 400)])
    tone = beep_tone(1000.0, 500, 8000.0)
    for i in range(0, tone.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += [(e, 0) for e in screening.push(tone[i : i + FRAME_SAMPLES], True)]
    assert [type(e) for e, _ in events] == [MachineAnswered, MessageCue]
    assert events[1][0].why == "the beep"


def test_a_machine_that_never_stops_talking_gets_its_message_at_the_limit() -> None:
    screening = Screening(limits=ScreeningLimits(beep_timeout_s=5.0))
    events = run(screening, [(True, 20000)])
    assert [(type(e), ms) for e, ms in events] == [(MachineAnswered, 3500), (MessageCue, 8500)]
    # The transcript's audio is bounded (Whisper takes under 30 s).
    assert screening.greeting_audio.size <= 28 * 16000


def test_a_beep_with_no_greeting_is_a_machine_recording_already() -> None:
    screening = Screening()
    tone = beep_tone(850.0, 400, 8000.0)
    events = []
    for i in range(0, tone.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += screening.push(tone[i : i + FRAME_SAMPLES], True)
    assert [type(e) for e in events] == [MachineAnswered, MessageCue]


def test_nothing_after_the_verdict() -> None:
    screening = Screening()
    run(screening, [(False, 2000)])
    assert run(screening, [(True, 10000)]) == []


def beep(screening: Screening, hz: float = 1000.0) -> list[object]:
    tone, events = beep_tone(hz, 400, 8000.0), []
    for i in range(0, tone.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += screening.push(tone[i : i + FRAME_SAMPLES], True)
    return events


def test_a_short_greeting_is_a_person_once_its_words_are_a_persons() -> None:
    screening = Screening(confirm_words=True)
    events = run(screening, [(True, 900), (False, 1000)])
    assert [type(e) for e, _ in events] == [WordsNeeded]
    assert screening.phase is ScreeningPhase.CONFIRMING
    assert run(screening, [(False, 500)]) == []  # frames go on while it is transcribed
    (person,) = screening.heard("Hello? This is Maria.")
    assert isinstance(person, PersonAnswered) and screening.phase is ScreeningPhase.DONE
    assert screening.heard("leave a message") == []  # decided once


def test_a_short_greeting_with_a_machines_words_waits_for_the_beep() -> None:
    screening = Screening(confirm_words=True)
    run(screening, [(True, 1500), (False, 800)])
    (machine,) = screening.heard("Leave a message after the tone.")
    assert isinstance(machine, MachineAnswered) and '"leave a message"' in machine.why
    assert [type(e) for e in beep(screening)] == [MessageCue]


def test_a_beep_while_the_words_are_transcribed_is_a_machine() -> None:
    screening = Screening(confirm_words=True)
    run(screening, [(True, 1200), (False, 800)])
    assert [type(e) for e in beep(screening, 850.0)] == [MachineAnswered, MessageCue]
    assert screening.heard("Hello?") == []


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Hi, you've reached Sam. Please leave a message after the beep.", "leave a message"),
        ("The person you are calling is not available.", "is not available"),
        ("Sorry, I can\u2019t take your call right now", "cant take your call"),
        ("You have reached the voice mail of Dana", "voice mail"),
        ("Hello? This is Maria.", None),
        ("Yes, speaking. Who is this?", None),
    ],
)
def test_machine_phrases(text: str, phrase: str | None) -> None:
    assert machine_phrase(text) == phrase


def test_the_message_uses_the_call_context() -> None:
    text = "Hi {{ first_name }}, about {{appointment}}; {{missing}} stays."
    assert render_context(text, {"first_name": "Ana", "appointment": "Tuesday"}) == (
        "Hi Ana, about Tuesday; {{missing}} stays."
    )
    assert render_context(None, {"a": 1}) is None


def test_leaving_a_message_needs_one() -> None:
    with pytest.raises(ValueError, match="message"):
        VoicemailConfig(action="leave_message")
    assert VoicemailConfig(action="leave_message", message="Call us back.").detect


@pytest.mark.parametrize("detail", ["message_left", "hung_up", "the machine hung up (x)"])
def test_voicemail_ends_read_back_and_give_status_voicemail(detail: str) -> None:
    end = CallEnd(EndReason.VOICEMAIL, detail)
    assert str(end) == f"voicemail:{detail}"
    assert CallEnd.parse(str(end)) == end
    assert end_status(end) is CallStatus.VOICEMAIL and CallStatus.VOICEMAIL.final
