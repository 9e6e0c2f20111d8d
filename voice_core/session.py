"""One call's conversation: caller frames in, agent audio and events out.

The interface a transport needs is small:

    session = CallSession(agent, stt=..., llm=..., tts=...)
    await session.start()
    session.push_audio(frame)        # 20 ms int16 @16 kHz; raises FrameError if malformed
    session.push_dtmf("5")
    async for event in session.events(): ...   # AgentAudio, ClearAudio, CallEnded, ...
    await session.hangup("caller_hangup")

The session orchestrates; the logic lives in sans-I/O objects beside it:
``endpointing`` (when the caller's turn ends), ``turns`` (each agent turn's lifecycle:
speculative -> committed -> speaking -> played | interrupted | discarded), ``playout``
(pacing and what the caller heard) and ``reply`` (STT final -> LLM -> chunker -> TTS).
Every stage is an asyncio task: the input loop (VAD + endpointing + partial STT), one
reply task per turn and the playout loop that hands agent frames to the transport at
real-time pace. Pacing lives in the engine, not in transports, because the session must
know what the caller has actually heard when they barge in.

Speculative replies: once the caller has been silent for
``speculative_silence_ms`` the reply is prepared in full (STT, LLM, TTS) but
held; if the turn really ends (``end_of_turn_silence_ms``) it is released at
once, and if the caller goes on speaking it is discarded unheard. This hides
the model work inside the endpointing wait, which is what brings the response
latency (end-of-turn decision -> first agent audio) under 200 ms on a laptop CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice_core.audio.frames import FRAME_MS, validate_frame
from voice_core.config import AgentConfig
from voice_core.endpointing import (
    Endpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnState,
)
from voice_core.events import (
    AgentAudio,
    AgentReply,
    AgentTextDelta,
    AgentUtteranceEnd,
    CallEnded,
    ClearAudio,
    DtmfReceived,
    DtmfRequested,
    SessionEvent,
    TranscriptFinal,
    TranscriptPartial,
    TransferRequested,
    TurnMetrics,
)
from voice_core.llm.base import LanguageModel, LLMError
from voice_core.metrics import stage_durations
from voice_core.playout import (
    Playout,
    SendFrame,
    Utterance,
    UtterancePlayed,
    UtteranceSent,
    WaitUntil,
)
from voice_core.reply import ReplyPipeline
from voice_core.stt.base import SpeechToText
from voice_core.tts.base import TextToSpeech
from voice_core.turn_detection.overlap import (
    CheckWords,
    IgnoredSound,
    InterruptAgent,
    Overlap,
    OverlapAction,
    OverlapOutcome,
    OverlapPhase,
    OverlapStarted,
    PauseAgent,
    ResumeAgent,
)
from voice_core.turn_detection.policy import decide, fresh_partial
from voice_core.turn_detection.smart_turn import TurnDetector
from voice_core.turn_faults import StageError, TurnFailure, TurnFaults, should_retry
from voice_core.turns import Turn, TurnBook, TurnPhase
from voice_core.vad import VoiceDetector, WebRtcVad

log = logging.getLogger(__name__)

_DTMF_KEYS = set("0123456789*#ABCD")
# Caller frames buffered before the engine: 10 s. A full queue means the event
# loop is stalled; old audio is then useless for a live conversation.
_INPUT_QUEUE_FRAMES = 500
# Marks a failed reply attempt may have left; its retry sets them again.
_ATTEMPT_MARKS = ("llm_first_token", "first_clause", "tts_first_audio")


@dataclass
class TranscriptEntry:
    speaker: str  # "caller" | "agent" | "system" (a note: a transfer)
    text: str
    t: float  # seconds since the call started
    interrupted: bool = False


@dataclass
class _CallerUtterance:
    """The caller's utterance in progress, from speech start to the end of turn."""

    frames: list[np.ndarray] = field(default_factory=list)
    last_partial_at: float = 0.0
    last_partial: str = ""
    last_partial_samples: int = 0  # the audio the last partial was decoded from
    barged_in: bool = False  # it already interrupted the agent
    backchannel: bool = False  # it started while the agent was talking
    stream: Any = None  # the STT's per-utterance stream (partials, then the final), if it has one


class _Changed:
    """One signal for 'a turn was released, frames were queued, an utterance was played'.

    The state lives in the turn and playout objects; waiters re-check their condition
    after each notification, so one signal serves every waiter.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._event.wait()


class CallSession:
    def __init__(
        self,
        agent: AgentConfig,
        *,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
        call_id: str = "",
        context: dict[str, Any] | None = None,
        playout_lead_ms: int = 120,
        vad: VoiceDetector | None = None,
        clock: Callable[[], float] = time.monotonic,
        turn_detector: TurnDetector | None = None,
        tools: Any = None,
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        self.agent = agent
        self._on_ended = on_ended
        # Model mode without a model (pipecat-ai's file not installed): the words alone
        # may extend the wait; the fixed silence decides the rest.
        self._turn_detector = turn_detector
        self.call_id = call_id
        self.context = dict(context or {})
        self._clock = clock
        self._vad = vad or WebRtcVad(agent.endpointing.vad_aggressiveness)
        self._endpointer = Endpointer(agent.endpointing)
        self._reply = ReplyPipeline(
            agent,
            stt=stt,
            llm=llm,
            tts=tts,
            clock=clock,
            emit=self._emit,
            call_id=call_id,
            tools=tools,
        )
        self._turns = TurnBook()
        self._faults = TurnFaults(agent.max_failed_turns)
        self._partials_failed = 0
        self._playout = Playout(playout_lead_ms / 1000)

        self.history: list[dict[str, Any]] = [{"role": "system", "content": self._system_prompt()}]
        self.transcript: list[TranscriptEntry] = []
        self.turn_metrics: list[TurnMetrics] = []
        self.end_reason: str | None = None
        self.started_at: float | None = None
        self.ended = asyncio.Event()

        self._in: asyncio.Queue[np.ndarray] = asyncio.Queue(_INPUT_QUEUE_FRAMES)
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._changed = _Changed()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reply_tasks: dict[Turn, asyncio.Task[Any]] = {}
        self._preroll: deque[np.ndarray] = deque(
            maxlen=max(1, agent.endpointing.preroll_ms // FRAME_MS)
            + agent.endpointing.speech_start_ms // FRAME_MS
            + 2
        )
        self._caller = _CallerUtterance()
        self._last_voiced_t = 0.0
        self._partial_task: asyncio.Task[None] | None = None
        self._last_activity = 0.0
        self._silence_prompted = False
        self._dtmf_digits = ""
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._frames_dropped = 0
        # The caller speaking over the agent (turn_detection.overlap): the audio since its
        # onset (for a quick transcript), a few frames before it, and a caller turn that
        # ended while the decision was still open.
        self._overlap = Overlap(agent.endpointing)
        self._overlap_audio: list[np.ndarray] = []
        self._recent: deque[np.ndarray] = deque(
            maxlen=agent.endpointing.speech_start_ms // FRAME_MS + 6
        )
        self._deferred_end: tuple[list[np.ndarray], Any, str, float] | None = None
        self.overlaps: list[OverlapOutcome] = []  # every sound over the agent, and its outcome

    # ------------------------------------------------------------------ public API

    async def start(self) -> None:
        self.started_at = self._clock()
        self._last_activity = self.started_at
        self._spawn("input", self._input_loop)
        self._spawn("playout", self._playout_loop)
        self._spawn("watchdog", self._watchdog)
        if self.agent.llm.prewarm:
            self._spawn("llm-prewarm", self._prewarm_llm)
        welcome = self._reply.welcome()  # a flow's start node, or the welcome message
        if welcome:
            self._speak_text(welcome)

    def push_audio(self, frame: np.ndarray | bytes) -> None:
        """Feed one caller frame. Raises FrameError (with the reason) if malformed."""
        if self.ended.is_set():
            return
        pcm = validate_frame(frame)
        try:
            self._in.put_nowait(pcm)
        except asyncio.QueueFull:
            self._frames_dropped += 1
            if self._frames_dropped in (1, 50, 500):
                log.warning(
                    "call %s: engine is behind, dropped %d caller frames",
                    self.call_id,
                    self._frames_dropped,
                )

    def push_dtmf(self, digit: str) -> None:
        if self.ended.is_set():
            return
        if len(digit) != 1 or digit not in _DTMF_KEYS:
            raise ValueError(f"invalid DTMF digit {digit!r}; expected one of 0-9 * # A-D")
        self._emit(DtmfReceived(digit))
        self._last_activity = self._clock()
        if self._dtmf_timer:
            self._dtmf_timer.cancel()
        if digit == "#":
            self._submit_dtmf()
            return
        self._dtmf_digits += digit
        loop = asyncio.get_running_loop()
        self._dtmf_timer = loop.call_later(self.agent.dtmf_timeout_ms / 1000, self._submit_dtmf)

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Every event, in order; ends after CallEnded."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, CallEnded):
                return

    async def hangup(self, reason: str = "caller_hangup") -> None:
        await self._end(reason)

    async def say(self, text: str) -> None:
        """Say a line now (a transfer's briefing) and return once the engine has played it."""
        turn = self._speak_text(text)
        task = self._reply_tasks.get(turn)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._changed.until(lambda: not self.agent_speaking or self.ended.is_set())

    def flow_record(self) -> dict[str, Any] | None:
        """A flow agent's outcome (values, last node, path); None for a free-form agent."""
        flow = self._reply.flow
        return None if flow is None else flow.record()

    def note(self, text: str) -> None:
        """A transcript line nobody said (``speaker: system``): a transfer, on the record."""
        self.transcript.append(TranscriptEntry("system", text, self._now_rel()))

    def _request_transfer(self, name: str) -> None:
        cfg = self.agent.transfer
        target = cfg.target(name)
        if target is None:  # the reply pipeline only lets allowed names through
            return
        briefing = cfg.briefing if cfg.mode == "warm" else None
        self._emit(TransferRequested(target.name, target.to, cfg.mode, briefing))

    async def wait_ended(self) -> str:
        await self.ended.wait()
        return self.end_reason or ""

    @property
    def agent_speaking(self) -> bool:
        return (
            self._turns.speaking is not None
            or self._playout.playing is not None
            or self._playout.held is not None
        )

    # ------------------------------------------------------------------ plumbing

    def _system_prompt(self) -> str:
        prompt = self.agent.system_prompt
        if self.context:
            # call_context variables (a name, an appointment) are the agent's to use.
            lines = "\n".join(f"- {k}: {v}" for k, v in self.context.items())
            prompt = f"{prompt}\n\nAbout this call:\n{lines}"
        return prompt

    def _now_rel(self) -> float:
        return round(self._clock() - (self.started_at or self._clock()), 3)

    def _emit(self, event: SessionEvent) -> None:
        self._events.put_nowait(event)

    def _spawn(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        # The coroutine is created inside the task, so a task cancelled before it
        # ever runs (a speculation discarded at once) leaves no un-awaited coroutine.
        task = asyncio.create_task(
            self._guard(name, fn, args, kwargs), name=f"{self.call_id}:{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_turn(self, turn: Turn, name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        """The turn's reply task: cancelled when the turn is discarded or interrupted."""
        task = self._spawn(name, fn, *args, **kwargs)
        self._reply_tasks[turn] = task
        task.add_done_callback(lambda _: self._reply_tasks.pop(turn, None))

    def _cancel_turn(self, turn: Turn) -> None:
        task = self._reply_tasks.get(turn)
        if task is not None:
            task.cancel()

    async def _guard(self, name: str, fn: Any, args: tuple, kwargs: dict) -> None:
        """An exception in any stage ends this call (with a logged reason), nothing else."""
        try:
            await fn(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("call %s: %s failed", self.call_id, name)
            await self._end(f"error:{name}:{type(exc).__name__}")

    async def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        if self._dtmf_timer:
            self._dtmf_timer.cancel()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        log.info("call %s ended: %s", self.call_id, reason)
        self._emit(CallEnded(reason))
        if self._on_ended is not None:
            self._on_ended()

    async def _prewarm_llm(self) -> None:
        try:
            async for _ in self._reply.llm.stream([*self.history], None, max_tokens=1):
                pass
        except LLMError as exc:
            log.warning("call %s: LLM prewarm failed: %s", self.call_id, exc)

    # ------------------------------------------------------------------ input

    async def _input_loop(self) -> None:
        partial_s = self.agent.stt.partial_interval_ms / 1000
        while True:
            frame = await self._in.get()
            now = self._clock()
            voiced = self._vad.is_speech(frame)
            if voiced:
                self._last_voiced_t = now
            if self._endpointer.state == TurnState.IDLE:
                self._preroll.append(frame)
            else:
                self._caller.frames.append(frame)
            self._recent.append(frame)
            if self._overlap.phase is not OverlapPhase.IDLE:
                self._overlap_audio.append(frame)
            self._on_overlap(self._overlap.push(voiced, self.agent_speaking), now)
            for ev in self._endpointer.push(voiced):
                if isinstance(ev, SpeechStarted):
                    # A flow waiting for a phone number or a spelling: wait out the pauses.
                    self._endpointer.expect_dictation(self._reply.expects_dictation())
                    self._caller = _CallerUtterance(
                        frames=list(self._preroll),
                        last_partial_at=now,
                        backchannel=self.agent_speaking,
                        stream=self._reply.open_stream(),
                    )
                    self._preroll.clear()
                    self._last_activity = now
                elif isinstance(ev, SpeechResumed):
                    self._discard_pending("caller kept talking")
                elif isinstance(ev, SpeechPaused):
                    if not self._ignore_utterance():
                        self._prepare_reply(self._last_voiced_t)
                        self._judge_end_of_turn(ev)
                elif isinstance(ev, TurnEnded):
                    if self._overlap.deciding:
                        # Spoken over the agent, not yet judged: a turn only if it was
                        # an interruption (see _interrupt_agent).
                        self._deferred_end = (
                            self._caller.frames,
                            self._caller.stream,
                            ev.why,
                            self._last_voiced_t,
                        )
                    elif not self._ignore_utterance():
                        if self._turns.pending is None:
                            self._prepare_reply(self._last_voiced_t)
                        if self._turns.pending is not None:
                            self._turns.pending.end_of_turn = ev.why
                        log.info("call %s: end of turn: %s", self.call_id, ev.why)
                        self._commit(now)
                    self._caller.frames = []
                    self._last_activity = now

            state = self._endpointer.state
            if state != TurnState.IDLE:
                self._last_activity = now
            if (
                state == TurnState.SPEAKING
                and partial_s > 0
                and now - self._caller.last_partial_at >= partial_s
                and (self._partial_task is None or self._partial_task.done())
            ):
                self._caller.last_partial_at = now
                audio = np.concatenate(self._caller.frames)
                self._partial_task = self._spawn(
                    "partial-stt", self._partial, audio, self._caller.stream, self._overlap.frame
                )

    def _judge_end_of_turn(self, pause: SpeechPaused) -> None:
        """At the speculative pause, ask the end-of-turn model and the words how long to
        wait: its cost hides inside the silence the caller is making anyway."""
        if self.agent.endpointing.mode != "model" or not self._caller.frames:
            return
        audio = np.concatenate(self._caller.frames)
        # The words count only if the partial heard the caller up to the pause: one taken
        # half a second earlier ("I would like to") would call a finished turn incomplete.
        silence = (pause.frame - pause.last_voiced_frame) * audio.size // len(self._caller.frames)
        text = fresh_partial(
            self._caller.last_partial, self._caller.last_partial_samples, audio.size - silence
        )
        self._spawn("turn-detect", self._judge, audio, text, self._endpointer.pause_no)

    async def _judge(self, audio: np.ndarray, text: str, pause_no: int) -> None:
        probability = None
        if self._turn_detector is not None:
            try:
                probability = await self._turn_detector.judge(audio)
            except Exception:  # the fixed silence still ends the turn
                log.exception("call %s: end-of-turn model failed", self.call_id)
        verdict = decide(self.agent.endpointing, probability, text)
        self._endpointer.adapt(pause_no, verdict.silence_ms, verdict.why)

    def _ignore_utterance(self) -> bool:
        """A short caller sound while the agent talks (an 'uh-huh') is not a turn."""
        caller = self._caller
        return caller.backchannel and not caller.barged_in and self.agent_speaking

    # ------------------------------------------------------------------ over the agent

    def _on_overlap(self, actions: list[OverlapAction], now: float) -> None:
        """Do what the overlap machine says: pause, transcribe, resume or interrupt."""
        for action in actions:
            if isinstance(action, OverlapStarted):
                self._overlap_audio = list(self._recent)
                ago = (self._overlap.frame - action.frame) * FRAME_MS / 1000
                self.overlaps.append(OverlapOutcome("", "", round(now - ago, 3)))
            elif isinstance(action, PauseAgent):
                self._pause_agent(action, now)
            elif isinstance(action, CheckWords):
                audio = np.concatenate(self._overlap_audio)
                self._spawn("overlap-stt", self._check_words, audio, action.frame)
            elif isinstance(action, ResumeAgent):
                self._resume_agent(action, now)
            elif isinstance(action, InterruptAgent):
                self._interrupt_agent(action, now)
            elif isinstance(action, IgnoredSound):
                self._settle_overlap("ignored", action.why, now)
                log.info("call %s: backchannel ignored (%s)", self.call_id, action.why)
                self._forget_caller_sound()

    def _settle_overlap(self, outcome: str, why: str, now: float) -> OverlapOutcome | None:
        record = self.overlaps[-1] if self.overlaps and not self.overlaps[-1].outcome else None
        if record is not None:
            record.outcome, record.why, record.decided_t = outcome, why, now
        self._overlap_audio = []
        return record

    def _forget_caller_sound(self) -> None:
        """The sound over the agent was not a turn: drop it, so a turn that started with
        it cannot carry it (speech after this starts a new caller utterance)."""
        if not self._caller.barged_in:
            self._endpointer.reset()
            self._caller = _CallerUtterance()
        self._deferred_end = None

    def _pause_agent(self, action: PauseAgent, now: float) -> None:
        turn = self._turns.speaking
        utt = self._playout.playing or (turn.utterance if turn else None)
        if self.overlaps and not self.overlaps[-1].outcome:
            self.overlaps[-1].paused_t = now
        if utt is not None and not (utt.cancelled or utt.played):
            self._playout.pause(utt, now)
            self._emit(ClearAudio(utt.id))
        log.info(
            "call %s: caller speaks over the agent: paused %d ms after onset",
            self.call_id,
            action.stop_ms,
        )

    async def _check_words(self, audio: np.ndarray, upto_frame: int) -> None:
        """A quick transcript of just the sound over the agent: its words decide."""
        try:
            result = await self._reply.stt.transcribe(audio)
        except Exception as exc:  # the timeout still decides (resume)
            log.warning("call %s: overlap transcription failed: %s", self.call_id, exc)
            return
        text = result.text if result.is_speech else ""
        self._on_overlap(self._overlap.words(text, upto_frame), self._clock())

    def _resume_agent(self, action: ResumeAgent, now: float) -> None:
        record = self._settle_overlap("resumed", action.why, now)
        utt = self._playout.held
        back_ms = 0
        if utt is not None:
            cut = utt.held_at or 0
            cfg = self.agent.endpointing
            start = self._playout.resume_frame(
                utt, action.talked_over_ms // FRAME_MS, cfg.resume_rewind_ms // FRAME_MS
            )
            back_ms = (cut - start) * FRAME_MS
            self._playout.resume(utt, start)
            self._changed.notify()
        if record is not None:
            record.resumed_from_ms = back_ms
        log.info(
            "call %s: %s: the agent goes on (from %d ms before where it stopped)",
            self.call_id,
            action.why,
            back_ms,
        )
        self._forget_caller_sound()

    def _interrupt_agent(self, action: InterruptAgent, now: float) -> None:
        self._settle_overlap("interrupted", action.why, now)
        log.info("call %s: interrupted (%s)", self.call_id, action.why)
        if self.agent_speaking:
            self._barge_in()
        self._caller.barged_in = True
        deferred, self._deferred_end = self._deferred_end, None
        if deferred is not None and self._turns.pending is None:
            # The caller's turn ended while the agent was paused: it is the turn now.
            frames, stream, why, speech_end_t = deferred
            self._prepare_reply(speech_end_t, frames, stream)
            if self._turns.pending is not None:
                self._turns.pending.end_of_turn = why
            self._commit(now)

    async def _partial(self, audio: np.ndarray, stream: Any, overlap_frame: int = -1) -> None:
        # ``stream`` is the utterance's as of when the audio was taken: a partial that
        # runs after that utterance ended must not feed the next one's agreement.
        try:
            if stream is not None:
                result = await stream.partial(audio)
            else:
                result = await self._reply.stt.transcribe(audio)
        except Exception as exc:
            # A partial only updates the live caption: skip it, never end the call over
            # it; the final transcription (retried, see turn_faults) decides the turn.
            self._partials_failed += 1
            if self._partials_failed in (1, 10, 100, 1000):
                log.warning(
                    "call %s: partial transcription failed (%d so far), skipped: %s: %s",
                    self.call_id,
                    self._partials_failed,
                    type(exc).__name__,
                    exc,
                )
            return
        if self._overlap.phase is not OverlapPhase.IDLE and overlap_frame >= 0:
            text = result.text if result.is_speech else ""
            self._on_overlap(self._overlap.words(text, overlap_frame), self._clock())
        if stream is not self._caller.stream:
            return
        self._caller.last_partial_samples = audio.size
        if result.is_speech and result.text != self._caller.last_partial:
            if self._endpointer.state != TurnState.IDLE:
                self._caller.last_partial = result.text
                self._emit(TranscriptPartial(result.text))

    def _submit_dtmf(self) -> None:
        digits, self._dtmf_digits = self._dtmf_digits, ""
        self._dtmf_timer = None
        if not digits or self.ended.is_set():
            return
        if self.agent_speaking:
            self._barge_in()
        self._discard_pending("keypad input")
        turn = self._turns.speculate(user_text=f"(The caller typed on the keypad: {digits})")
        turn.marks["speech_end"] = self._clock()
        self._spawn_turn(turn, f"reply-{turn.no}", self._run_reply, turn)
        self._commit(self._clock())

    # ------------------------------------------------------------------ turns

    def _prepare_reply(
        self,
        speech_end_t: float,
        frames: list[np.ndarray] | None = None,
        stream: Any = None,
    ) -> None:
        """A speculative reply to the caller's utterance (by default the one in progress)."""
        self._discard_pending("superseded")
        if frames is None:
            frames, stream = self._caller.frames, self._caller.stream
        if not frames:
            return
        turn = self._turns.speculate(audio=np.concatenate(frames))
        turn.stt_stream = stream
        turn.marks["speech_end"] = speech_end_t
        self._spawn_turn(turn, f"reply-{turn.no}", self._run_reply, turn)

    def _discard_pending(self, why: str) -> None:
        turn = self._turns.take_pending()
        if turn is None:
            return
        self._cancel_turn(turn)
        log.debug("call %s: speculative turn %d discarded (%s)", self.call_id, turn.no, why)

    def _commit(self, now: float) -> None:
        turn = self._turns.commit(now)
        if turn is None:
            return
        self._changed.notify()
        self._silence_prompted = False
        self._publish_user(turn)
        for text in turn.take_held():
            self._emit(AgentTextDelta(text, turn.no))

    def _publish_user(self, turn: Turn) -> None:
        """The caller's words enter the transcript and history once the turn is real."""
        if turn.published_user or not turn.released or turn.user_text is None:
            return
        turn.published_user = True
        self.transcript.append(TranscriptEntry("caller", turn.user_text, self._now_rel()))
        self.history.append({"role": "user", "content": turn.user_text})
        self._emit(TranscriptFinal(turn.user_text, turn.no))

    async def _run_reply(self, turn: Turn) -> None:
        stt_failed: StageError | None = None
        if turn.user_text is None:
            try:
                heard = await self._transcribe(turn)
            except StageError as exc:
                stt_failed = exc
            else:
                if not heard:
                    self._turns.no_speech(turn)
                    return
                self._publish_user(turn)
        failure = await self._speak(
            turn, lambda: self._reply.clauses(turn, self.history), failed=stt_failed
        )
        if failure is not None:
            if self._faults.turn_failed(failure) and not self.ended.is_set():
                log.warning(
                    "call %s: %d turns failed in a row, ending the call (%s)",
                    self.call_id,
                    self._faults.in_a_row,
                    failure.error,
                )
                await self._end(failure.error.end_reason)
            return
        self._faults.turn_succeeded()
        if turn.dtmf_out and not self.ended.is_set():
            self._emit(DtmfRequested(turn.dtmf_out))
        if turn.end_call and not self.ended.is_set():
            await self._end("agent_ended")
        elif turn.transfer_to and not self.ended.is_set():
            self._request_transfer(turn.transfer_to)

    async def _transcribe(self, turn: Turn) -> bool:
        """The final transcription, tried once more if it fails (``turn_faults``)."""
        try:
            return await self._reply.transcribe(turn)
        except StageError as exc:
            if not should_retry(exc, 1, heard_any=False):
                raise
            self._log_failure(turn, exc, retrying=True)
            # Plain transcription for the retry: the stream's own state may be what broke.
            turn.stt_stream = None
            return await self._reply.transcribe(turn)

    def _log_failure(self, turn: Turn, exc: StageError, *, retrying: bool) -> None:
        then = "trying it again" if retrying else "giving up on the turn"
        log.warning(
            "call %s: turn %d: %s failed, %s: %s",
            self.call_id,
            turn.no,
            exc.stage.upper(),
            then,
            exc.cause,
        )

    def _speak_text(self, text: str) -> Turn:
        """Say a fixed line (welcome, prompts) as its own committed turn."""
        turn = self._turns.scripted()
        self._spawn_turn(
            turn,
            "say",
            self._speak,
            turn,
            lambda: _one_line(text),
            record_metrics=False,
            fallback=False,
        )
        return turn

    async def _speak(
        self,
        turn: Turn,
        clauses: Callable[[], AsyncIterator[str]],
        *,
        record_metrics: bool = True,
        failed: StageError | None = None,
        fallback: bool = True,
    ) -> TurnFailure | None:
        """The turn's clauses as one utterance: synthesized, played out, then recorded.

        ``clauses`` makes the clauses, again for a retry. A stage that fails (or
        ``failed``: the STT already did) gets the agent's fallback line said in the
        turn's place (``fallback``; a fixed line that fails is skipped). Returns the
        failure, once the utterance has played."""
        utt = self._playout.open(turn)
        turn.utterance = utt
        if failed is None:
            failed = await self._synthesize(turn, utt, clauses)
        fallback_heard = False
        if failed is not None:
            self._log_failure(turn, failed, retrying=False)
            # Whatever the failed reply decided (hang up, transfer), the caller did not hear it.
            turn.end_call, turn.transfer_to = False, None
            if fallback:
                turn.fallback_reason = str(failed)
                line = self.agent.fallback_line
                unspoken = await self._synthesize(turn, utt, lambda: _one_line(line), retry=False)
                fallback_heard = unspoken is None
                if unspoken is not None:
                    log.warning("call %s: the fallback line failed too: %s", self.call_id, unspoken)
            # Nothing may have been queued: the turn still ends only once it is real.
            await self._changed.until(lambda: turn.released)
        self._playout.close(utt)
        self._changed.notify()
        await self._changed.until(lambda: utt.played)
        self._turns.finish(turn)
        self._record_utterance(turn, utt, utt.text, interrupted=False, metrics=record_metrics)
        return None if failed is None else TurnFailure(failed, fallback_heard)

    async def _synthesize(
        self,
        turn: Turn,
        utt: Utterance,
        clauses: Callable[[], AsyncIterator[str]],
        *,
        retry: bool = True,
    ) -> StageError | None:
        """LLM and TTS into ``utt``, tried once more if they fail before the caller heard
        any of it; the failure, if it stands."""
        attempt = 1
        while True:
            try:
                await self._reply.synthesize(
                    turn,
                    clauses(),
                    utt,
                    released=lambda: self._changed.until(lambda: turn.released),
                    queue=self._queue_frames,
                )
                return None
            except StageError as exc:
                if not retry or not should_retry(exc, attempt, heard_any=utt.queued > 0):
                    return exc
                self._log_failure(turn, exc, retrying=True)
            attempt += 1
            # Start the retry clean: nothing of the failed attempt was queued or heard.
            utt.clauses.clear()
            turn.end_call, turn.transfer_to = False, None
            if not turn.released:
                turn.held_deltas.clear()
            for mark in _ATTEMPT_MARKS:
                turn.marks.pop(mark, None)

    def _queue_frames(self, utt: Utterance, frames: list[np.ndarray]) -> None:
        self._playout.push(utt, frames)
        self._changed.notify()

    def _record_utterance(
        self, turn: Turn | None, utt: Utterance, text: str, *, interrupted: bool, metrics: bool
    ) -> None:
        """What the agent said (or, if cut, what was heard) enters transcript and history."""
        if text:
            self.transcript.append(
                TranscriptEntry("agent", text, self._now_rel(), interrupted=interrupted)
            )
            self.history.append({"role": "assistant", "content": text})
        self._emit(AgentReply(text, turn.no if turn else 0, interrupted))
        if interrupted:
            self._emit(AgentUtteranceEnd(utt.id, text, True))
        self._last_activity = self._clock()
        if (
            turn is not None
            and metrics
            and "endpoint" in turn.marks
            and "first_audio_out" in turn.marks
        ):
            m = TurnMetrics(
                turn.no,
                dict(turn.marks),
                stage_durations(turn.marks, turn.stt_start),
                end_of_turn=turn.end_of_turn,
            )
            self.turn_metrics.append(m)
            self._emit(m)

    def _barge_in(self) -> None:
        self._caller.barged_in = True
        turn = self._turns.interrupt()
        utt = self._playout.playing or self._playout.held or (turn.utterance if turn else None)
        log.info("call %s: barge-in (turn %s)", self.call_id, turn.no if turn else "-")
        if turn is not None:
            self._cancel_turn(turn)
        # Paused for the caller already: the transport was cleared then, and the caller
        # heard the utterance up to the pause.
        was_held = utt is not None and utt is self._playout.held
        if self._overlap.phase is not OverlapPhase.IDLE:
            self._settle_overlap("interrupted", "barge-in", self._clock())
            self._overlap.reset()
        heard = self._playout.cut(utt, self._clock())
        if utt is not None:
            if not was_held:
                self._emit(ClearAudio(utt.id))
            self._record_utterance(turn, utt, heard, interrupted=True, metrics=True)

    # ------------------------------------------------------------------ output

    async def _playout_loop(self) -> None:
        """Hand frames to the transport when the playout says they are due."""
        playout = self._playout
        while True:
            now = self._clock()
            step = playout.poll(now)
            if step is None:
                await self._changed.until(lambda: playout.has_entries)
            elif isinstance(step, WaitUntil):
                await asyncio.sleep(step.t - now)
            elif isinstance(step, SendFrame):
                turn = step.utterance.turn
                if turn is not None and "first_audio_out" not in turn.marks:
                    if turn.phase is TurnPhase.COMMITTED:
                        turn.start_speaking(now)
                    else:  # a turn already cut whose queued audio still plays out
                        turn.marks["first_audio_out"] = now
                self._emit(AgentAudio(step.pcm, step.utterance.id))
            elif isinstance(step, UtteranceSent):
                utt = step.utterance
                self._emit(AgentUtteranceEnd(utt.id, utt.text, False))
            elif isinstance(step, UtterancePlayed):
                self._changed.notify()

    # ------------------------------------------------------------------ end conditions

    async def _watchdog(self) -> None:
        cfg = self.agent.end_call
        assert self.started_at is not None
        while True:
            await asyncio.sleep(0.25)
            now = self._clock()
            if now - self.started_at >= cfg.max_duration_s:
                await self._say_and_end(cfg.goodbye_message, "max_duration")
                return
            idle = (
                not self.agent_speaking
                and self._turns.pending is None
                and self._endpointer.state == TurnState.IDLE
            )
            if idle and now - self._last_activity >= cfg.silence_timeout_s:
                if cfg.silence_prompt and not self._silence_prompted:
                    self._silence_prompted = True
                    self._speak_text(cfg.silence_prompt)
                    self._last_activity = now
                else:
                    await self._end("silence_timeout")
                    return

    async def _say_and_end(self, text: str | None, reason: str) -> None:
        if self.agent_speaking:
            self._barge_in()
        self._discard_pending(reason)
        if text:
            turn = self._speak_text(text)
            task = self._reply_tasks.get(turn)
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._end(reason)


async def _one_line(text: str) -> AsyncIterator[str]:
    yield text
