"""Answering-machine detection at the start of an outbound call: sans-I/O, frame in,
verdict out.

Two signals, as carriers' own detectors use them:

- the greeting's shape: a person answers with a short "Hello?" and waits; a
  machine talks on ("Hi, you've reached ... leave a message after the tone").
  Speech that runs ``machine_speech_s`` with no pause longer than
  ``pause_ms`` is a machine; speech that stops after less is a person;
- the beep: a steady pure tone (one spectral peak holding most of the frame's
  energy) for ``beep_min_ms``: where a message can start.

Frames are the engine's (int16, 16 kHz, 20 ms); whether a frame is speech comes
from the caller's VAD, so this module only counts.
"""

from __future__ import annotations

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

    def _beep(self, frame: np.ndarray) -> bool:
        tone = is_tone(frame, self.cfg)
        if tone is not None and self._tone_bin is not None and abs(tone - self._tone_bin) <= 1:
            self._tone_ms += FRAME_MS
        else:
            self._tone_ms = FRAME_MS if tone is not None else 0
        self._tone_bin = tone
        return self._tone_ms >= self.cfg.beep_min_ms
