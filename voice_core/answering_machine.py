"""Answering-machine detection at the start of an outbound call: sans-I/O, frame in,
verdict out.

Three signals, as carriers' own detectors use them:

- the greeting's shape: a person answers with a short "Hello?" and waits; a
  machine talks on ("Hi, you've reached ... leave a message after the tone").
  Speech that runs ``machine_speech_s`` with no pause longer than
  ``pause_ms`` is a machine; speech that stops after less is a person;
- the beep: a steady pure tone (one spectral peak holding most of the frame's
  energy) for ``beep_min_ms``: where a message can start;
- the words, for a greeting short enough to pass for a person's: "Leave a message
  after the tone" is a machine whatever its length (``machine_phrase``).

Frames are the engine's (int16, 16 kHz, 20 ms); whether a frame is speech comes
from the caller's VAD, so this module only counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from voice_core.audio.frames import ENGINE_RATE, FRAME_MS, FRAME_SAMPLES


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    BEEP = "beep"  # the machine's tone: leave the message now


@dataclass(frozen=True)
class DetectorConfig:
    # A person's "Hello, this is Maria?" is under ~2 s; a machine greeting runs on.
    machine_speech_s: float = 3.5
    # The pause after which a short greeting counts as a person waiting for an answer;
    # shorter pauses are the breaths inside one greeting.
    pause_ms: int = 700
    # Beeps last 0.2-1 s at 400-2000 Hz; 160 ms of one steady tone is no vowel.
    beep_min_ms: int = 160
    beep_band_hz: tuple[float, float] = (300.0, 3000.0)
    # Share of the frame's energy in the peak (and its neighbours): a pure tone is ~1.0,
    # voiced speech spreads over its harmonics and stays well under.
    beep_purity: float = 0.8
    beep_min_rms: float = 300.0  # about -40 dBFS: line noise is no beep


def is_tone(frame: np.ndarray, cfg: DetectorConfig) -> int | None:
    """The frame's tone bin if it is one steady pure tone in the beep band, else None."""
    x = frame.astype(np.float64)
    if np.sqrt(np.mean(x * x)) < cfg.beep_min_rms:
        return None
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    total = power[1:].sum()
    if total <= 0:
        return None
    hz_per_bin = ENGINE_RATE / x.size
    lo, hi = (int(f / hz_per_bin) for f in cfg.beep_band_hz)
    peak = lo + int(np.argmax(power[lo:hi]))
    share = power[max(peak - 2, 1) : peak + 3].sum() / total
    return peak if share >= cfg.beep_purity else None


class MachineDetector:
    """Feed every caller frame from the answer on; ``push`` returns a verdict once.

    HUMAN or MACHINE is said at most once; after MACHINE, BEEP once the tone comes
    (a machine without a beep never says BEEP: the caller then times out)."""

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        self.cfg = cfg or DetectorConfig()
        self.verdict: Verdict | None = None
        self._speech_ms = 0  # speech since the greeting started, pauses included
        self._pause_ms = 0
        self._talking = False
        self._tone_bin: int | None = None
        self._tone_ms = 0
        self.beeped = False

    def push(self, frame: np.ndarray, voiced: bool) -> Verdict | None:
        if frame.size != FRAME_SAMPLES:
            raise ValueError(f"expected {FRAME_SAMPLES} samples, got {frame.size}")
        if self.verdict is not Verdict.HUMAN and not self.beeped and self._beep(frame):
            self.beeped = True
            self.verdict = Verdict.BEEP
            return Verdict.BEEP
        if self.verdict is not None:
            return None
        if voiced:
            self._talking = True
            self._speech_ms += self._pause_ms + FRAME_MS
            self._pause_ms = 0
            if self._speech_ms >= self.cfg.machine_speech_s * 1000:
                self.verdict = Verdict.MACHINE
                return self.verdict
        elif self._talking:
            self._pause_ms += FRAME_MS
            if self._pause_ms >= self.cfg.pause_ms:
                self.verdict = Verdict.HUMAN
                return self.verdict
        return None

    def expect_beep(self) -> None:
        """A HUMAN verdict is being reconsidered (a short greeting may be a machine's):
        from now on only the beep is listened for."""
        if not self.beeped:
            self.verdict = Verdict.MACHINE

    def _beep(self, frame: np.ndarray) -> bool:
        tone = is_tone(frame, self.cfg)
        if tone is not None and self._tone_bin is not None and abs(tone - self._tone_bin) <= 1:
            self._tone_ms += FRAME_MS
        else:
            self._tone_ms = FRAME_MS if tone is not None else 0
        self._tone_bin = tone
        return self._tone_ms >= self.cfg.beep_min_ms


# What machines say and people answering a call do not (lowercase, apostrophes dropped,
# as ``_words`` writes a transcript). Carrier greetings ("the person you are calling is
# not available") and home ones ("leave a message after the tone") both.
MACHINE_PHRASES = (
    "leave a message",
    "leave your message",
    "leave me a message",
    "leave your name",
    "after the tone",
    "after the beep",
    "at the tone",
    "record your message",
    "is not available",
    "are not available",
    "is unavailable",
    "cant take your call",
    "cannot take your call",
    "cant come to the phone",
    "cannot come to the phone",
    "voicemail",
    "voice mail",
    "mailbox",
)


def _words(text: str) -> str:
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def machine_phrase(text: str) -> str | None:
    """The first machine phrase in a transcript of a greeting, or None."""
    words = f" {_words(text)} "
    return next((p for p in MACHINE_PHRASES if f" {p} " in words), None)


# ---------------------------------------------------------------- screening a call


@dataclass(frozen=True)
class ScreeningLimits:
    """How long a screening may take, and why.

    - ``no_greeting_s``: a person who picks up and says nothing is waiting for us to
      speak; this much silence from the answer on means a person (the agent greets).
    - ``beep_timeout_s``: once a machine is heard, wait this long for its beep before
      leaving the message anyway (greetings run 5-20 s).
    - ``greeting_end_ms``: a machine without a beep: this much silence after its
      greeting means it is recording (the gap before a beep is under ~1 s).
    - ``max_greeting_s``: greeting audio kept for the transcript; Whisper takes < 30 s.
    """

    no_greeting_s: float = 2.0
    beep_timeout_s: float = 20.0
    greeting_end_ms: int = 2000
    max_greeting_s: float = 28.0


@dataclass(frozen=True)
class PersonAnswered:
    why: str


@dataclass(frozen=True)
class MachineAnswered:
    why: str


@dataclass(frozen=True)
class WordsNeeded:
    """A short greeting then a pause: a person, unless its words are a machine's.
    Transcribe ``Screening.greeting_audio`` and hand the text to ``Screening.heard``."""

    why: str


@dataclass(frozen=True)
class MessageCue:
    """The machine is recording now: the moment to leave a message."""

    why: str


ScreeningEvent = PersonAnswered | MachineAnswered | WordsNeeded | MessageCue


class ScreeningPhase(StrEnum):
    LISTENING = "listening"  # judging the greeting
    CONFIRMING = "confirming"  # a short greeting: waiting for its words (or a beep)
    MACHINE = "machine"  # a machine: waiting for its beep, or its greeting's end
    DONE = "done"


class Screening:
    """The start of an outbound call, frame by frame: a person, or a machine and when it
    records. Time is counted in frames (20 ms each), so the verdicts do not depend on how
    fast frames arrive. Events: ``PersonAnswered`` (once, and nothing after it), or
    ``MachineAnswered`` then ``MessageCue`` (the beep, the greeting's end, or the wait's
    limit). ``greeting`` holds the greeting's audio, from its first speech to the cue.

    With ``confirm_words``, a short greeting is not a person at once: ``WordsNeeded``
    asks for its transcript, and ``heard(text)`` decides (a machine phrase, or a beep in
    the meantime, makes it a machine)."""

    def __init__(
        self,
        detector: DetectorConfig | None = None,
        limits: ScreeningLimits | None = None,
        *,
        confirm_words: bool = False,
    ) -> None:
        self.detector = MachineDetector(detector)
        self.limits = limits or ScreeningLimits()
        self.confirm_words = confirm_words
        self.phase = ScreeningPhase.LISTENING
        self.greeting: list[np.ndarray] = []
        self._ms = 0  # since the answer
        self._heard = False  # any speech yet
        self._quiet_ms = 0  # since the last speech
        self._machine_at_ms = 0

    @property
    def greeting_audio(self) -> np.ndarray:
        if not self.greeting:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.greeting)

    def push(self, frame: np.ndarray, voiced: bool) -> list[ScreeningEvent]:
        if self.phase is ScreeningPhase.DONE:
            return []
        verdict = self.detector.push(frame, voiced)
        self._ms += FRAME_MS
        if voiced:
            self._heard, self._quiet_ms = True, 0
        else:
            self._quiet_ms += FRAME_MS
        if self._heard and len(self.greeting) * FRAME_MS < self.limits.max_greeting_s * 1000:
            self.greeting.append(frame)
        if self.phase is ScreeningPhase.LISTENING:
            return self._listening(verdict)
        if self.phase is ScreeningPhase.CONFIRMING:
            if verdict is not Verdict.BEEP:
                return []
            self.phase = ScreeningPhase.DONE
            return [MachineAnswered("a beep after a short greeting"), MessageCue("the beep")]
        return self._waiting_for_beep(verdict)

    def heard(self, text: str) -> list[ScreeningEvent]:
        """The words of a short greeting (after ``WordsNeeded``): a machine's phrase makes
        it a machine (then the beep is waited for), anything else a person."""
        if self.phase is not ScreeningPhase.CONFIRMING:
            return []
        phrase = machine_phrase(text)
        if phrase is None:
            self.phase = ScreeningPhase.DONE
            return [PersonAnswered("a short greeting, then a pause")]
        self.phase, self._machine_at_ms = ScreeningPhase.MACHINE, self._ms
        return [MachineAnswered(f'its words ("{phrase}")')]

    def _listening(self, verdict: Verdict | None) -> list[ScreeningEvent]:
        if verdict is Verdict.HUMAN:
            if self.confirm_words:
                self.phase = ScreeningPhase.CONFIRMING
                self.detector.expect_beep()
                return [WordsNeeded("a short greeting, then a pause")]
            self.phase = ScreeningPhase.DONE
            return [PersonAnswered("a short greeting, then a pause")]
        if verdict is Verdict.MACHINE:
            self.phase, self._machine_at_ms = ScreeningPhase.MACHINE, self._ms
            speech_s = self.detector.cfg.machine_speech_s
            return [MachineAnswered(f"the greeting ran on past {speech_s:g} s")]
        if verdict is Verdict.BEEP:  # a tone before any long greeting: a machine recording
            self.phase = ScreeningPhase.DONE
            return [MachineAnswered("a beep"), MessageCue("the beep")]
        if not self._heard and self._ms >= self.limits.no_greeting_s * 1000:
            self.phase = ScreeningPhase.DONE
            return [PersonAnswered(f"nobody spoke for {self.limits.no_greeting_s:g} s")]
        return []

    def _waiting_for_beep(self, verdict: Verdict | None) -> list[ScreeningEvent]:
        limits = self.limits
        if verdict is Verdict.BEEP:
            why = "the beep"
        elif self._quiet_ms >= limits.greeting_end_ms:
            why = f"the greeting ended ({limits.greeting_end_ms} ms of silence, no beep)"
        elif self._ms - self._machine_at_ms >= limits.beep_timeout_s * 1000:
            why = f"no beep within {limits.beep_timeout_s:g} s"
        else:
            return []
        self.phase = ScreeningPhase.DONE
        return [MessageCue(why)]
