"""The caller speaking over the agent: a backchannel, a false alarm, or an interruption.

A pure state machine, as ``Endpointer`` is: one voiced/unvoiced flag per frame in (with
whether the agent is speaking), transcripts in as they arrive, actions out. Time is the
frame count; the session does what the actions say.

    IDLE --(voiced speech while the agent speaks)--> ONSET
    ONSET --(interruption_min_speech_ms, 3/4 voiced)--> PAUSED [PauseAgent, CheckWords]
    ONSET --(silence, or the agent finished)------> IDLE       [IgnoredSound]
    PAUSED --(words outside the backchannels, or speech past backchannel_max_ms)
           -----------------------------------------> IDLE     [InterruptAgent]
    PAUSED --(the sound ended and its words are only backchannels, or none)
           -----------------------------------------> IDLE     [ResumeAgent]
    PAUSED --(false_interruption_timeout_ms without a decision) -> IDLE  [ResumeAgent]

Why pause first and decide after: a real interruption must stop the agent within
~250 ms of speech onset, long before anyone (model or person) can tell "uh-huh" from
"wait, that's wrong". Pipecat's MinWordsInterruptionStrategy waits for the words and
so lets the agent talk over a real interruption until the transcript arrives; LiveKit
pauses on voice activity and resumes after a timeout only when no transcript came
(``resume_false_interruption``), so a backchannel with words ("yeah") still stops the
agent for good. Here the pause is cheap and reversible (the session holds the
unplayed audio and the cut point) and the decision uses every piece of evidence
as it comes: how long the voice lasted, a quick transcript of just the overlapping
audio checked against a backchannel lexicon, and the STT's own "no speech".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from voice_core.audio.frames import FRAME_MS
from voice_core.config import EndpointingConfig


class OverlapPhase(Enum):
    IDLE = "idle"  # the caller is not speaking over the agent
    ONSET = "onset"  # caller speech over the agent, too little yet to pause it
    PAUSED = "paused"  # the agent is held; the evidence decides


@dataclass(frozen=True)
class OverlapStarted:
    """Caller speech over the agent began at ``frame`` (keep its audio from there)."""

    frame: int


@dataclass(frozen=True)
class PauseAgent:
    """Hold the agent's utterance where the caller is (stop handing frames, clear the
    transport) but keep its unplayed audio: it may go on."""

    onset_frame: int
    frame: int

    @property
    def stop_ms(self) -> int:
        """From the caller's speech onset to the pause, as the engine saw it."""
        return (self.frame - self.onset_frame) * FRAME_MS


@dataclass(frozen=True)
class CheckWords:
    """Transcribe the overlapping audio up to now; answer with ``Overlap.words``."""

    frame: int


@dataclass(frozen=True)
class ResumeAgent:
    """Not a turn: play the held utterance on, from a little before where it stopped.

    ``talked_over_ms``: how much of the agent the caller spoke over before the pause,
    which the resume repeats so nothing said under the caller's voice is lost."""

    why: str
    talked_over_ms: int


@dataclass(frozen=True)
class InterruptAgent:
    """A real interruption: cut the agent's turn (what was heard stays in the history)."""

    why: str


@dataclass(frozen=True)
class IgnoredSound:
    """A sound over the agent too short to pause it: nothing happened."""

    why: str


OverlapAction = (
    OverlapStarted | PauseAgent | CheckWords | ResumeAgent | InterruptAgent | IgnoredSound
)

_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+")
_TOKEN = re.compile(r"[a-z0-9']+")


class Lexicon:
    """Backchannel phrases; ``other_words(text)`` is what the text says beyond them."""

    def __init__(self, phrases: Iterable[str]) -> None:
        seqs = {tuple(tokens(p)) for p in phrases}
        self._phrases = sorted((s for s in seqs if s), key=len, reverse=True)

    def other_words(self, text: str) -> list[str]:
        """The words of ``text`` not covered by a backchannel phrase (longest match first)."""
        words, out, i = tokens(text), [], 0
        while i < len(words):
            for phrase in self._phrases:
                if tuple(words[i : i + len(phrase)]) == phrase:
                    i += len(phrase)
                    break
            else:
                out.append(words[i])
                i += 1
        return out


def tokens(text: str) -> list[str]:
    """Spoken words only: sound notes ('[coughing]', '(door closes)', '♪') are not words;
    hyphens split ('uh-huh' -> uh huh) so every spelling of a backchannel matches."""
    t = _BRACKETED.sub(" ", text.lower()).replace("-", " ")
    return _TOKEN.findall(t)


class Overlap:
    def __init__(self, config: EndpointingConfig) -> None:
        self.cfg = config
        self.lexicon = Lexicon(config.backchannel_phrases)
        self.phase = OverlapPhase.IDLE
        self.frame = -1
        self._start_frames = max(1, config.speech_start_ms // FRAME_MS)
        self._pause_frames = max(1, config.interruption_min_speech_ms // FRAME_MS)
        self._max_frames = max(self._pause_frames + 1, config.backchannel_max_ms // FRAME_MS)
        self._end_frames = max(1, config.backchannel_end_silence_ms // FRAME_MS)
        self._timeout_frames = max(1, config.false_interruption_timeout_ms // FRAME_MS)
        self._window: list[bool] = []
        self._reset_overlap()

    def _reset_overlap(self) -> None:
        self._onset = 0
        self._voiced = 0
        self._last_voiced = 0
        self._paused_at = 0
        self._ended = False  # the sound is over (silence since), waiting for its words
        self._heard = ""  # the latest transcript's text
        self._heard_upto = -1  # the last frame that transcript covers

    @property
    def deciding(self) -> bool:
        """The agent is paused and the decision is still open."""
        return self.phase is OverlapPhase.PAUSED

    @property
    def onset_frame(self) -> int:
        return self._onset

    @property
    def voiced_ms(self) -> int:
        return self._voiced * FRAME_MS

    def reset(self) -> None:
        """The overlap is over by other means (a barge-in from DTMF, the call ending)."""
        self.phase = OverlapPhase.IDLE
        self._window.clear()
        self._reset_overlap()

    # ------------------------------------------------------------------ input

    def push(self, voiced: bool, agent_speaking: bool) -> list[OverlapAction]:
        self.frame += 1
        f = self.frame
        if self.phase is OverlapPhase.IDLE:
            if not agent_speaking:
                self._window.clear()
                return []
            self._window.append(voiced)
            if len(self._window) > self._start_frames + 2:
                self._window.pop(0)
            if sum(self._window) < self._start_frames:
                return []
            self.phase = OverlapPhase.ONSET
            first = f - len(self._window) + 1
            self._onset = first + self._window.index(True)
            self._voiced = sum(self._window)
            self._last_voiced = f
            self._window.clear()
            return [OverlapStarted(self._onset)]

        if voiced:
            self._voiced += 1
            self._last_voiced = f
            self._ended = False
        silence = f - self._last_voiced

        if self.phase is OverlapPhase.ONSET:
            if not agent_speaking:
                # The agent finished on its own: the caller's speech is a turn of its own.
                self.reset()
                return []
            # Time since onset, mostly voiced: webrtcvad drops frames inside real phone
            # speech, so counting voiced frames alone would stop the agent late.
            elapsed = f - self._onset + 1
            if elapsed >= self._pause_frames and 4 * self._voiced >= 3 * self._pause_frames:
                self.phase = OverlapPhase.PAUSED
                self._paused_at = f
                return [PauseAgent(self._onset, f), CheckWords(f)]
            if silence >= self._end_frames:
                why = f"a {self.voiced_ms} ms sound, too short to pause the agent"
                self.reset()
                return [IgnoredSound(why)]
            return []

        # PAUSED
        if self._voiced >= self._max_frames:
            return self._interrupt(f"{self.voiced_ms} ms of speech over the agent")
        if f - self._paused_at >= self._timeout_frames:
            return self._decide(timed_out=True)
        if silence >= self._end_frames and not self._ended:
            self._ended = True
            if self._heard_upto >= self._last_voiced:
                return self._decide()
            return [CheckWords(f)]
        return []

    def words(self, text: str, upto_frame: int) -> list[OverlapAction]:
        """A transcript of the overlapping audio up to ``upto_frame`` ('' = no speech)."""
        if self.phase is OverlapPhase.IDLE or upto_frame < self._heard_upto:
            return []
        self._heard, self._heard_upto = text, upto_frame
        if self.phase is not OverlapPhase.PAUSED:
            return []
        other = self.lexicon.other_words(text)
        if len(other) >= self.cfg.interruption_min_words:
            return self._interrupt(f"words {text.strip()!r}")
        if self._ended and upto_frame >= self._last_voiced:
            return self._decide()
        return []

    # ------------------------------------------------------------------ decisions

    def _decide(self, *, timed_out: bool = False) -> list[OverlapAction]:
        text = self._heard.strip()
        known = self._heard_upto >= self._last_voiced
        if self.lexicon.other_words(text):
            return self._interrupt(f"words {text!r}")
        if timed_out and not known:
            why = f"false interruption: no words within {self.cfg.false_interruption_timeout_ms} ms"
        elif tokens(text):
            why = f"backchannel {text!r}"
        else:
            why = f"false interruption: no words in {self.voiced_ms} ms of sound"
        talked_over = (self._paused_at - self._onset) * FRAME_MS
        self.phase = OverlapPhase.IDLE
        self._reset_overlap()
        return [ResumeAgent(why, talked_over)]

    def _interrupt(self, why: str) -> list[OverlapAction]:
        self.phase = OverlapPhase.IDLE
        self._reset_overlap()
        return [InterruptAgent(why)]


@dataclass
class OverlapOutcome:
    """One sound over the agent, for the call log, tests and benchmarks (session clock)."""

    outcome: str  # "ignored" | "resumed" | "interrupted"
    why: str
    onset_t: float
    paused_t: float | None = None  # when the agent stopped (None: it never did)
    decided_t: float | None = None
    resumed_from_ms: int | None = None  # resumed: how far back before the cut it restarted
