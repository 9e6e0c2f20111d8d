"""One call's conversation: caller frames in, agent audio and events out.

The interface a transport needs is small:

    session = CallSession(agent, stt=..., llm=..., tts=...)
    await session.start()
    session.push_audio(frame)        # 20 ms int16 @16 kHz; raises FrameError if malformed
    session.push_dtmf("5")
    async for event in session.events(): ...   # AgentAudio, ClearAudio, CallEnded, ...
    await session.hangup("caller_hangup")

Inside, every stage is an asyncio task: the input loop (VAD + endpointing +
partial STT), one reply task per turn (STT final -> LLM token stream -> clause
chunker -> TTS) and the playout loop that hands agent frames to the transport
at real-time pace. Pacing lives here, not in transports, because the session
must know what the caller has actually heard when they barge in.

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

from voice_core.audio.frames import FRAME_MS, FRAME_SAMPLES, Framer, validate_frame
from voice_core.chunker import ClauseChunker
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
    SessionEvent,
    ToolInvoked,
    TranscriptFinal,
    TranscriptPartial,
    TurnMetrics,
)
from voice_core.llm.base import END_CALL_TOOL, LanguageModel, LLMError, TextDelta, ToolCall
from voice_core.metrics import stage_durations
from voice_core.stt.base import SpeechToText
from voice_core.tts.base import TextToSpeech
from voice_core.vad import VoiceDetector, WebRtcVad

log = logging.getLogger(__name__)

_FRAME_S = FRAME_MS / 1000
_DTMF_KEYS = set("0123456789*#ABCD")
# Caller frames buffered before the engine: 10 s. A full queue means the event
# loop is stalled; old audio is then useless for a live conversation.
_INPUT_QUEUE_FRAMES = 500


@dataclass
class TranscriptEntry:
    speaker: str  # "caller" | "agent"
    text: str
    t: float  # seconds since the call started
    interrupted: bool = False


@dataclass
class _Utterance:
    """One agent utterance on its way out: what was said and how much of it was played."""

    id: int
    clauses: list[tuple[str, int]] = field(default_factory=list)  # (text, frames)
    queued: int = 0  # frames put on the playout queue
    released: int = 0  # frames handed to the transport
    played_base: int = 0  # frames surely played before the playout clock last restarted
    done: bool = False  # all frames queued
    played: asyncio.Event = field(default_factory=asyncio.Event)
    turn: _Turn | None = None


@dataclass
class _Turn:
    """A reply in preparation; ``committed`` opens the gate to the caller's ear."""

    no: int
    audio: np.ndarray | None
    user_text: str | None = None  # set for DTMF turns (no STT)
    committed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    marks: dict[str, float] = field(default_factory=dict)
    stt_start: float | None = None
    published_user: bool = False
    discarded: bool = False
    utterance: _Utterance | None = None
    end_call: bool = False
    fallback_reason: str | None = None
    held_deltas: list[str] = field(default_factory=list)  # reply text before commit


@dataclass
class _PlayItem:
    frame: np.ndarray
    utterance: _Utterance


@dataclass
class _UtteranceDone:
    utterance: _Utterance


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
    ) -> None:
        self.agent = agent
        self.call_id = call_id
        self.context = dict(context or {})
        self._stt = stt
        self._llm = llm
        self._tts = tts
        self._clock = clock
        self._lead_s = playout_lead_ms / 1000
        self._vad = vad or WebRtcVad(agent.endpointing.vad_aggressiveness)
        self._endpointer = Endpointer(agent.endpointing)

        self.history: list[dict[str, Any]] = [{"role": "system", "content": self._system_prompt()}]
        self.transcript: list[TranscriptEntry] = []
        self.turn_metrics: list[TurnMetrics] = []
        self.end_reason: str | None = None
        self.started_at: float | None = None
        self.ended = asyncio.Event()

        self._in: asyncio.Queue[np.ndarray] = asyncio.Queue(_INPUT_QUEUE_FRAMES)
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._play_q: asyncio.Queue[_PlayItem | _UtteranceDone] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._preroll: deque[np.ndarray] = deque(
            maxlen=max(1, agent.endpointing.preroll_ms // FRAME_MS)
            + agent.endpointing.speech_start_ms // FRAME_MS
            + 2
        )
        self._utt_frames: list[np.ndarray] = []
        self._last_voiced_t = 0.0
        self._pending: _Turn | None = None  # speculative or committed, not yet speaking
        self._speaking: _Turn | None = None  # committed reply being produced/played
        self._playing: _Utterance | None = None
        self._utterance_seq = 0
        self._turn_seq = 0
        self._barged_in = False  # this caller utterance already interrupted the agent
        self._backchannel = False  # caller utterance started while the agent was talking
        self._partial_task: asyncio.Task[None] | None = None
        self._last_partial_at = 0.0
        self._last_partial = ""
        self._last_activity = 0.0
        self._silence_prompted = False
        self._dtmf_digits = ""
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._frames_dropped = 0
        self._playout_t0: float | None = None
        self._playout_k = 0
        self._cancelled_utterances: set[int] = set()

    # ------------------------------------------------------------------ public API

    async def start(self) -> None:
        self.started_at = self._clock()
        self._last_activity = self.started_at
        self._spawn("input", self._input_loop)
        self._spawn("playout", self._playout_loop)
        self._spawn("watchdog", self._watchdog)
        if self.agent.llm.prewarm:
            self._spawn("llm-prewarm", self._prewarm_llm)
        if self.agent.welcome_message:
            self._speak_text(self.agent.welcome_message)

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

    async def wait_ended(self) -> str:
        await self.ended.wait()
        return self.end_reason or ""

    @property
    def agent_speaking(self) -> bool:
        return self._speaking is not None or self._playing is not None

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

    async def _prewarm_llm(self) -> None:
        try:
            async for _ in self._llm.stream([*self.history], None, max_tokens=1):
                pass
        except LLMError as exc:
            log.warning("call %s: LLM prewarm failed: %s", self.call_id, exc)

    # ------------------------------------------------------------------ input

    async def _input_loop(self) -> None:
        cfg = self.agent.endpointing
        partial_s = self.agent.stt.partial_interval_ms / 1000
        while True:
            frame = await self._in.get()
            now = self._clock()
            voiced = self._vad.is_speech(frame)
            if voiced:
                self._last_voiced_t = now
            state_before = self._endpointer.state
            if state_before == TurnState.IDLE:
                self._preroll.append(frame)
            else:
                self._utt_frames.append(frame)
            for ev in self._endpointer.push(voiced):
                if isinstance(ev, SpeechStarted):
                    self._utt_frames = list(self._preroll)
                    self._preroll.clear()
                    self._last_partial_at = now
                    self._last_partial = ""
                    self._barged_in = False
                    self._backchannel = self.agent_speaking
                    self._last_activity = now
                elif isinstance(ev, SpeechResumed):
                    self._discard_pending("caller kept talking")
                elif isinstance(ev, SpeechPaused):
                    if not self._ignore_utterance():
                        self._prepare_reply(self._last_voiced_t)
                elif isinstance(ev, TurnEnded):
                    if not self._ignore_utterance():
                        if self._pending is None:
                            self._prepare_reply(self._last_voiced_t)
                        self._commit(self._pending, now)
                    self._utt_frames = []
                    self._last_activity = now

            state = self._endpointer.state
            if state != TurnState.IDLE:
                self._last_activity = now
            if (
                state == TurnState.SPEAKING
                and self.agent_speaking
                and not self._barged_in
                and self._endpointer.voiced_ms >= cfg.interruption_min_speech_ms
            ):
                self._barge_in()
            if (
                state == TurnState.SPEAKING
                and partial_s > 0
                and now - self._last_partial_at >= partial_s
                and (self._partial_task is None or self._partial_task.done())
            ):
                self._last_partial_at = now
                audio = np.concatenate(self._utt_frames)
                self._partial_task = self._spawn("partial-stt", self._partial, audio)

    def _ignore_utterance(self) -> bool:
        """A short caller sound while the agent talks (an 'uh-huh') is not a turn."""
        return self._backchannel and not self._barged_in and self.agent_speaking

    async def _partial(self, audio: np.ndarray) -> None:
        result = await self._stt.transcribe(audio)
        if result.is_speech and result.text != self._last_partial:
            if self._endpointer.state != TurnState.IDLE:
                self._last_partial = result.text
                self._emit(TranscriptPartial(result.text))

    def _submit_dtmf(self) -> None:
        digits, self._dtmf_digits = self._dtmf_digits, ""
        self._dtmf_timer = None
        if not digits or self.ended.is_set():
            return
        if self.agent_speaking:
            self._barge_in()
        self._discard_pending("keypad input")
        turn = self._new_turn(None)
        turn.user_text = f"(The caller typed on the keypad: {digits})"
        turn.marks["speech_end"] = self._clock()
        self._pending = turn
        turn.task = self._spawn(f"reply-{turn.no}", self._reply, turn)
        self._commit(turn, self._clock())

    # ------------------------------------------------------------------ turns

    def _new_turn(self, audio: np.ndarray | None) -> _Turn:
        self._turn_seq += 1
        return _Turn(no=self._turn_seq, audio=audio)

    def _prepare_reply(self, speech_end_t: float) -> None:
        self._discard_pending("superseded")
        if not self._utt_frames:
            return
        turn = self._new_turn(np.concatenate(self._utt_frames))
        turn.marks["speech_end"] = speech_end_t
        self._pending = turn
        turn.task = self._spawn(f"reply-{turn.no}", self._reply, turn)

    def _discard_pending(self, why: str) -> None:
        turn = self._pending
        if turn is None or turn.committed.is_set():
            return
        self._pending = None
        turn.discarded = True
        if turn.task:
            turn.task.cancel()
        log.debug("call %s: speculative turn %d discarded (%s)", self.call_id, turn.no, why)

    def _commit(self, turn: _Turn | None, now: float) -> None:
        self._pending = None
        if turn is None or turn.discarded:
            return
        turn.marks["endpoint"] = now
        turn.committed.set()
        self._speaking = turn
        self._silence_prompted = False
        self._publish_user(turn)
        for text in turn.held_deltas:
            self._emit(AgentTextDelta(text, turn.no))
        turn.held_deltas.clear()

    def _publish_user(self, turn: _Turn) -> None:
        """The caller's words enter the transcript and history once the turn is real."""
        if turn.published_user or not turn.committed.is_set() or turn.user_text is None:
            return
        turn.published_user = True
        self.transcript.append(TranscriptEntry("caller", turn.user_text, self._now_rel()))
        self.history.append({"role": "user", "content": turn.user_text})
        self._emit(TranscriptFinal(turn.user_text, turn.no))

    async def _reply(self, turn: _Turn) -> None:
        try:
            if turn.user_text is None:
                await self._transcribe_final(turn)
                if turn.discarded:
                    return
            await self._produce_reply(turn)
        finally:
            if self._speaking is turn and (turn.discarded or not turn.committed.is_set()):
                self._speaking = None

    async def _transcribe_final(self, turn: _Turn) -> None:
        assert turn.audio is not None
        turn.stt_start = self._clock()
        result = await self._stt.transcribe(turn.audio)
        turn.marks["stt_final"] = self._clock()
        if not result.is_speech:
            # Noise, a cough, line hiss: no LLM call, no reply.
            log.info(
                "call %s: turn %d had no speech (no_speech_prob=%.2f, text=%r)",
                self.call_id,
                turn.no,
                result.no_speech_prob,
                result.text,
            )
            turn.discarded = True
            if self._speaking is turn:
                self._speaking = None
            return
        turn.user_text = result.text
        self._publish_user(turn)

    async def _produce_reply(self, turn: _Turn) -> None:
        await self._speak(turn, self._llm_clauses(turn))
        if turn.end_call and not self.ended.is_set():
            await self._end("agent_ended")

    async def _llm_clauses(self, turn: _Turn) -> AsyncIterator[str]:
        """The reply as speakable clauses; the fallback line if the LLM fails or says nothing."""
        cfg = self.agent.llm
        tools = [END_CALL_TOOL] if self.agent.end_call.end_call_tool else None
        messages = [*self.history]
        if not turn.published_user:
            messages.append({"role": "user", "content": turn.user_text or ""})
        chunker = ClauseChunker()
        said_anything = False
        stream = self._llm.stream(
            messages, tools, temperature=cfg.temperature, max_tokens=cfg.max_tokens
        )
        iterator = stream.__aiter__()
        try:
            first = True
            while True:
                try:
                    if first:
                        event = await asyncio.wait_for(
                            iterator.__anext__(), cfg.first_token_timeout_s
                        )
                    else:
                        event = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise LLMError(f"no token within {cfg.first_token_timeout_s:.1f} s") from exc
                if first:
                    turn.marks["llm_first_token"] = self._clock()
                    first = False
                if isinstance(event, TextDelta):
                    if turn.committed.is_set():
                        self._emit(AgentTextDelta(event.text, turn.no))
                    else:
                        turn.held_deltas.append(event.text)
                    for clause in chunker.push(event.text):
                        said_anything = True
                        yield self._mark_clause(turn, clause)
                elif isinstance(event, ToolCall):
                    self._emit(ToolInvoked(event.name, event.arguments))
                    if event.name == "end_call":
                        turn.end_call = True
                    else:
                        log.warning("call %s: LLM called unknown tool %r", self.call_id, event.name)
            for clause in chunker.flush():
                said_anything = True
                yield self._mark_clause(turn, clause)
        except LLMError as exc:
            turn.fallback_reason = str(exc)
            log.warning("call %s: LLM failed, saying the fallback line: %s", self.call_id, exc)
        finally:
            # Closing the stream closes the HTTP response, so the server stops generating
            # a reply nobody will hear (barge-in, discarded speculation).
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        if not said_anything and not turn.end_call:
            if turn.fallback_reason is None:
                turn.fallback_reason = "empty reply"
                log.warning("call %s: LLM returned nothing, saying the fallback line", self.call_id)
            yield self._mark_clause(turn, self.agent.fallback_line)

    def _mark_clause(self, turn: _Turn, clause: str) -> str:
        turn.marks.setdefault("first_clause", self._clock())
        return clause

    def _speak_text(self, text: str) -> _Turn:
        """Say a fixed line (welcome, prompts) as its own committed turn."""

        async def lines() -> AsyncIterator[str]:
            yield text

        turn = self._new_turn(None)
        turn.committed.set()
        self._speaking = turn
        turn.task = self._spawn("say", self._speak, turn, lines(), record_metrics=False)
        return turn

    async def _speak(
        self, turn: _Turn, clauses: AsyncIterator[str], *, record_metrics: bool = True
    ) -> None:
        """TTS each clause as it arrives and queue the frames for playout once committed.

        Clauses are synthesized by a separate task so the LLM stream keeps flowing
        (and the next clause is ready) while the previous one is being synthesized.
        """
        self._utterance_seq += 1
        utt = _Utterance(self._utterance_seq, turn=turn)
        turn.utterance = utt
        clause_q: asyncio.Queue[str | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for clause in clauses:
                    await clause_q.put(clause)
            finally:
                await clause_q.put(None)
                await clauses.aclose()  # type: ignore[attr-defined]

        pump_task = asyncio.create_task(pump())
        try:
            framer = Framer(FRAME_SAMPLES)
            while (clause := await clause_q.get()) is not None:
                before = utt.queued
                frames: list[np.ndarray] = []
                async for audio in self._tts.synthesize(
                    clause, length_scale=self.agent.tts.length_scale
                ):
                    turn.marks.setdefault("tts_first_audio", self._clock())
                    frames.extend(framer.push(audio))
                    await turn.committed.wait()
                    self._queue_frames(utt, frames)
                    frames = []
                frames.extend(framer.flush())
                await turn.committed.wait()
                self._queue_frames(utt, frames)
                utt.clauses.append((clause, utt.queued - before))
            await pump_task
        finally:
            pump_task.cancel()
        utt.done = True
        self._play_q.put_nowait(_UtteranceDone(utt))
        await utt.played.wait()
        self._finish_utterance(turn, utt, interrupted=False, record_metrics=record_metrics)

    def _queue_frames(self, utt: _Utterance, frames: list[np.ndarray]) -> None:
        if utt.id in self._cancelled_utterances:
            return
        for frame in frames:
            self._play_q.put_nowait(_PlayItem(frame, utt))
        utt.queued += len(frames)

    def _finish_utterance(
        self, turn: _Turn, utt: _Utterance, *, interrupted: bool, record_metrics: bool = True
    ) -> None:
        text = self._heard_text(utt) if interrupted else " ".join(c for c, _ in utt.clauses)
        if text:
            self.transcript.append(
                TranscriptEntry("agent", text, self._now_rel(), interrupted=interrupted)
            )
            self.history.append({"role": "assistant", "content": text})
        self._emit(AgentReply(text, turn.no, interrupted))
        if interrupted:
            self._emit(AgentUtteranceEnd(utt.id, text, True))
        if self._speaking is turn:
            self._speaking = None
        if self._playing is utt:
            self._playing = None
        self._last_activity = self._clock()
        if record_metrics and "endpoint" in turn.marks and "first_audio_out" in turn.marks:
            metrics = TurnMetrics(
                turn.no, dict(turn.marks), stage_durations(turn.marks, turn.stt_start)
            )
            self.turn_metrics.append(metrics)
            self._emit(metrics)

    def _heard_text(self, utt: _Utterance) -> str:
        """The words the caller heard before the barge-in, cut proportionally in a clause."""
        played = utt.released
        if self._playout_t0 is not None:
            since_restart = max(0, int((self._clock() - self._playout_t0) / _FRAME_S))
            played = utt.played_base + min(utt.released - utt.played_base, since_restart)
        words: list[str] = []
        for text, n in utt.clauses:
            if played <= 0:
                break
            if played >= n:
                words.extend(text.split())
            else:
                parts = text.split()
                words.extend(parts[: int(len(parts) * played / max(1, n))])
            played -= n
        return " ".join(words)

    def _barge_in(self) -> None:
        self._barged_in = True
        turn = self._speaking
        utt = self._playing or (turn.utterance if turn else None)
        log.info("call %s: barge-in (turn %s)", self.call_id, turn.no if turn else "-")
        if turn and turn.task:
            turn.task.cancel()
        if utt is not None:
            self._cancelled_utterances.add(utt.id)
            self._emit(ClearAudio(utt.id))
            self._finish_utterance(turn or _Turn(0, None), utt, interrupted=True)
        self._speaking = None
        self._playing = None
        self._playout_t0 = None

    # ------------------------------------------------------------------ output

    async def _playout_loop(self) -> None:
        """Hand frames to the transport in real time, at most ``lead`` ahead of playback."""
        while True:
            item = await self._play_q.get()
            if item.utterance.id in self._cancelled_utterances:
                continue
            utt = item.utterance
            if isinstance(item, _UtteranceDone):
                self._emit(AgentUtteranceEnd(utt.id, " ".join(c for c, _ in utt.clauses), False))
                # The caller hears the last frame at t0 + k * 20 ms.
                if self._playout_t0 is not None:
                    end_at = self._playout_t0 + self._playout_k * _FRAME_S
                    delay = end_at - self._clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if utt.id not in self._cancelled_utterances:
                    self._playing = None
                    utt.played.set()
                continue
            now = self._clock()
            t0 = self._playout_t0
            if t0 is None or now > t0 + self._playout_k * _FRAME_S:
                # Everything released so far has played (or the far end ran dry because
                # we were late): restart the clock rather than burst to catch up.
                self._playout_t0 = t0 = now
                self._playout_k = 0
                utt.played_base = utt.released
            due = t0 + self._playout_k * _FRAME_S - self._lead_s
            if due > now:
                await asyncio.sleep(due - now)
            if utt.id in self._cancelled_utterances:
                continue
            self._playing = utt
            turn = utt.turn
            if turn is not None and "first_audio_out" not in turn.marks:
                turn.marks["first_audio_out"] = self._clock()
            self._emit(AgentAudio(item.frame, utt.id))
            utt.released += 1
            self._playout_k += 1

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
                and self._pending is None
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
            if turn.task:
                with contextlib.suppress(asyncio.CancelledError):
                    await turn.task
        await self._end(reason)
