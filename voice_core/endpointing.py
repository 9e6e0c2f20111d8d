"""Turn detection as a pure state machine: one voiced/unvoiced flag per frame in, events out.

No clocks and no I/O: time is the frame count, so the logic is tested with plain lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voice_core.audio.frames import FRAME_MS
from voice_core.config import EndpointingConfig


class TurnState(Enum):
    IDLE = "idle"  # no caller speech
    SPEAKING = "speaking"  # caller speaking
    TRAILING = "trailing"  # caller was speaking; silence, waiting for the end of turn


@dataclass(frozen=True)
class SpeechStarted:
    frame: int  # first frame of the utterance (pre-roll not included)


@dataclass(frozen=True)
class SpeechPaused:
    """Silence long enough to prepare a reply speculatively."""

    frame: int
    last_voiced_frame: int


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back before the end of turn: discard any speculative reply."""

    frame: int


@dataclass(frozen=True)
class TurnEnded:
    frame: int  # the frame at which the decision was made
    last_voiced_frame: int
    first_frame: int
    voiced_ms: int
    why: str = "silence"  # what decided it (the call log shows it per turn)


EndpointEvent = SpeechStarted | SpeechPaused | SpeechResumed | TurnEnded


class Endpointer:
    def __init__(self, config: EndpointingConfig) -> None:
        self.cfg = config
        self.state = TurnState.IDLE
        self.frame = -1
        self._start_frames = max(1, config.speech_start_ms // FRAME_MS)
        self._pause_frames = max(1, config.speculative_silence_ms // FRAME_MS)
        self._end_frames = max(self._pause_frames, config.end_of_turn_silence_ms // FRAME_MS)
        self._min_voiced = max(1, config.min_utterance_ms // FRAME_MS)
        # A short window of recent flags: speech starts when enough of it is voiced,
        # so one isolated click does not open a turn.
        self._window: list[bool] = []
        self._first_frame = 0
        self._last_voiced = 0
        self._voiced_count = 0
        self._paused = False
        self.pause_no = 0  # which pause a verdict is for (one per SpeechPaused)
        self._verdict_frames: int | None = None  # silence this pause needs, once judged
        self._verdict_why = ""
        self._dictation_frames: int | None = None  # the agent asked for digits or letters

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the current utterance (0 when idle)."""
        return self._voiced_count * FRAME_MS if self.state != TurnState.IDLE else 0

    def reset(self) -> None:
        self.state = TurnState.IDLE
        self._window.clear()
        self._paused = False
        self._voiced_count = 0
        self._verdict_frames = None

    def adapt(self, pause_no: int, silence_ms: int, why: str) -> bool:
        """An end-of-turn verdict for pause ``pause_no``: end the turn after ``silence_ms``
        of silence instead of the fixed wait. Ignored (False) when the caller has spoken
        again since: a verdict is only about the pause it was asked for."""
        if pause_no != self.pause_no or not self._paused or self.state != TurnState.TRAILING:
            return False
        self._verdict_frames = max(1, silence_ms // FRAME_MS)
        self._verdict_why = why
        return True

    def expect_dictation(self, on: bool) -> None:
        """The caller is about to dictate (a phone number, a spelling): their pauses
        between groups are not the end of the turn; ``dictation_silence_ms`` is."""
        ms = self.cfg.dictation_silence_ms
        self._dictation_frames = max(self._pause_frames, ms // FRAME_MS) if on else None

    def push(self, voiced: bool) -> list[EndpointEvent]:
        self.frame += 1
        f = self.frame
        events: list[EndpointEvent] = []
        if self.state == TurnState.IDLE:
            self._window.append(voiced)
            if len(self._window) > self._start_frames + 2:
                self._window.pop(0)
            if sum(self._window) >= self._start_frames:
                self.state = TurnState.SPEAKING
                first = f - len(self._window) + 1
                while not self._window[first - (f - len(self._window) + 1)]:
                    first += 1
                self._first_frame = first
                self._last_voiced = f
                self._voiced_count = sum(self._window)
                self._window.clear()
                events.append(SpeechStarted(first))
            return events

        if voiced:
            self._voiced_count += 1
            self._last_voiced = f
            if self.state == TurnState.TRAILING:
                self.state = TurnState.SPEAKING
                self._verdict_frames = None
                if self._paused:
                    self._paused = False
                    events.append(SpeechResumed(f))
            return events

        silence = f - self._last_voiced
        if self.state == TurnState.SPEAKING:
            self.state = TurnState.TRAILING
        if silence >= self._pause_frames and not self._paused:
            if self._voiced_count >= self._min_voiced:
                self._paused = True
                self.pause_no += 1
                events.append(SpeechPaused(f, self._last_voiced))
        end_frames = self._dictation_frames or self._end_frames
        why = "dictation silence" if self._dictation_frames else "silence"
        if self._verdict_frames is not None:
            end_frames, why = self._verdict_frames, self._verdict_why
            if self._dictation_frames:  # the words may shorten a dictation, never below it
                end_frames = max(end_frames, self._dictation_frames)
        if silence >= end_frames:
            voiced_ms = self._voiced_count * FRAME_MS
            long_enough = self._voiced_count >= self._min_voiced
            first = self._first_frame
            last = self._last_voiced
            self.reset()
            if long_enough:
                events.append(TurnEnded(f, last, first, voiced_ms, why))
        return events
