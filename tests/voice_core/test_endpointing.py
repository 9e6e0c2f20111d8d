from voice_core.config import EndpointingConfig
from voice_core.endpointing import (
    Endpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnState,
)

CFG = EndpointingConfig(
    speech_start_ms=60,
    speculative_silence_ms=100,
    end_of_turn_silence_ms=300,
    min_utterance_ms=200,
)


def run(flags: list[bool], cfg: EndpointingConfig = CFG) -> list[tuple[int, object]]:
    ep = Endpointer(cfg)
    out = []
    for f in flags:
        for ev in ep.push(f):
            out.append((ep.frame, ev))
    return out


def frames(ms: int, voiced: bool) -> list[bool]:
    return [voiced] * (ms // 20)


def test_a_turn_starts_pauses_and_ends() -> None:
    events = run(frames(200, False) + frames(600, True) + frames(400, False))
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechPaused, TurnEnded]
    started = events[0][1]
    assert started.frame == 10  # the first voiced frame, not the detection frame
    ended_at, ended = events[2]
    assert ended.last_voiced_frame == 39
    assert ended_at - ended.last_voiced_frame == 300 // 20
    assert ended.voiced_ms == 600


def test_a_pause_shorter_than_the_end_silence_does_not_end_the_turn() -> None:
    # "I'd like to book, um, ... a cleaning": 200 ms pause inside the sentence.
    flags = frames(400, True) + frames(200, False) + frames(400, True) + frames(400, False)
    kinds = [type(e) for _, e in run(flags)]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, TurnEnded]


def test_a_click_does_not_start_a_turn() -> None:
    flags = (
        frames(100, False) + [True] + frames(100, False) + [True, False, True] + frames(400, False)
    )
    assert run(flags) == []


def test_a_short_burst_is_not_a_turn() -> None:
    # 100 ms of voice (a cough) starts speech but is below min_utterance_ms.
    events = run(frames(100, True) + frames(500, False))
    assert [type(e) for _, e in events] == [SpeechStarted]


def test_state_returns_to_idle_after_the_turn() -> None:
    ep = Endpointer(CFG)
    for f in frames(300, True) + frames(300, False):
        ep.push(f)
    assert ep.state == TurnState.IDLE
    assert ep.voiced_ms == 0
    # and a second turn works the same way
    evs = [e for f in frames(300, True) + frames(300, False) for e in ep.push(f)]
    assert [type(e) for e in evs] == [SpeechStarted, SpeechPaused, TurnEnded]


def test_a_caller_dictating_is_not_cut_at_a_pause_between_groups() -> None:
    """Asked for a phone number, a 700 ms pause between digit groups is not the end of
    the turn (the usual 500 ms would end it); the dictation silence is."""
    from voice_core.config import EndpointingConfig
    from voice_core.endpointing import Endpointer, TurnEnded

    ep = Endpointer(EndpointingConfig())
    ep.expect_dictation(True)
    flags = [True] * 20 + [False] * 35 + [True] * 20 + [False] * 59
    assert not [e for f in flags for e in ep.push(f) if isinstance(e, TurnEnded)]
    (ended,) = [e for e in ep.push(False) if isinstance(e, TurnEnded)]
    assert ended.why == "dictation silence"
    ep.expect_dictation(False)
    flags = [True] * 20 + [False] * 25
    (ended,) = [e for f in flags for e in ep.push(f) if isinstance(e, TurnEnded)]
    assert ended.why == "silence"
