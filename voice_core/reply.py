"""The reply pipeline of one turn: final STT -> LLM token stream -> clause chunker -> TTS.

Each stage starts on the first piece of its input: clauses are cut from the token stream
as it arrives and synthesized one by one while the LLM goes on. The pipeline knows
nothing of playout or of the turn's place in the conversation; the session decides when
a turn's audio may be queued (``released``) and where its frames go (``queue``).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np

from voice_core.audio.frames import FRAME_SAMPLES, Framer
from voice_core.chunker import ClauseChunker
from voice_core.config import AgentConfig
from voice_core.dialing import check_dtmf_digits
from voice_core.events import AgentTextDelta, SessionEvent, ToolInvoked
from voice_core.flows.driver import FlowDriver, FlowReply
from voice_core.llm.base import (
    END_CALL_TOOL,
    SEND_DTMF_TOOL,
    LanguageModel,
    LLMError,
    TextDelta,
    ToolCall,
    transfer_call_tool,
)
from voice_core.playout import Utterance
from voice_core.stt.base import SpeechToText
from voice_core.tts.base import TextToSpeech
from voice_core.turn_faults import StageError
from voice_core.turns import Turn

# Rounds of custom tool calls one reply may make before it must answer.
_MAX_TOOL_ROUNDS = 3
# A tool slower than this gets a filler line, so the caller does not hear dead air.
_FILLER_AFTER_S = 0.7
_FILLER_LINE = "One moment, please."
EMBEDDED_MODEL = "smollm2-135m-instruct"

# The call's own logger: a call's reply failures read in one stream with the rest of it.
log = logging.getLogger("voice_core.session")


class ReplyPipeline:
    def __init__(
        self,
        agent: AgentConfig,
        *,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
        clock: Callable[[], float],
        emit: Callable[[SessionEvent], None],
        call_id: str = "",
        tools: Any = None,
    ) -> None:
        self.agent = agent
        self.tools = tools  # a voice_core.tools ToolRunner, or None: no custom tools
        # Each turn's "may it be heard yet" waiter, while its synthesis runs: a flow's
        # tool with side effects waits for it, so a discarded speculation books nothing.
        self._released: dict[Turn, Callable[[], Awaitable[None]]] = {}
        self.flow: FlowDriver | None = None
        if agent.flow is not None:
            self.flow = FlowDriver(
                agent.flow,
                use_model_tools=_model_reads_values(agent, llm),
                today=datetime.date.today().weekday(),
                call_id=call_id,
            )
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self._clock = clock
        self._emit = emit
        self._call_id = call_id

    def expects_dictation(self) -> bool:
        """Whether the caller's next words are dictated digits or letters (a flow asked
        for a phone number or a name to spell)."""
        return self.flow is not None and self.flow.expects_dictation()

    def welcome(self) -> str | None:
        """The call's first line: the flow's start node, or the agent's welcome message."""
        if self.flow is not None:
            return self.flow.greeting()
        return self.agent.welcome_message

    def open_stream(self) -> Any:
        """The STT's per-utterance stream, if it has one, with the agent's vocabulary."""
        stream = getattr(self.stt, "stream", None)
        if stream is None:
            return None
        prompt = self.agent.stt.prompt or None
        hints = self.flow.ear_hints() if self.flow is not None else ""
        if hints:  # the final primed for the values the flow waits for
            return stream(prompt=prompt, hints=hints)
        return stream(prompt=prompt)

    async def transcribe(self, turn: Turn) -> bool:
        """The final transcript of the turn's audio into ``turn.user_text``; False if no speech."""
        assert turn.audio is not None
        turn.stt_start = self._clock()
        try:
            if turn.stt_stream is not None:
                result = await turn.stt_stream.final(turn.audio)
            else:
                result = await self.stt.transcribe(turn.audio)
        except Exception as exc:
            raise StageError("stt", exc) from exc
        turn.marks["stt_final"] = self._clock()
        if not result.is_speech:
            # Noise, a cough, line hiss: no LLM call, no reply.
            log.info(
                "call %s: turn %d had no speech (no_speech_prob=%.2f, text=%r)",
                self._call_id,
                turn.no,
                result.no_speech_prob,
                result.text,
            )
            return False
        turn.user_text = result.text
        return True

    async def clauses(self, turn: Turn, history: list[dict[str, Any]]) -> AsyncIterator[str]:
        """The reply as speakable clauses; the fallback line if the LLM says nothing.

        An LLM that fails raises ``StageError("llm")``: the session retries the turn or
        says the fallback line (``turn_faults``)."""
        if self.flow is not None:
            async for clause in self._flow_clauses(turn):
                yield clause
            return
        tools = self._tools() or None
        messages = [*history]
        if not turn.published_user:
            messages.append({"role": "user", "content": turn.user_text or ""})
        chunker = ClauseChunker()
        said_anything = False
        for _round in range(_MAX_TOOL_ROUNDS + 1):
            asked: list[ToolCall] = []
            async for clause in self._stream_clauses(turn, messages, tools, chunker, asked):
                said_anything = True
                yield clause
            if not asked:
                break
            # The model called the customer's functions: run them (a filler line if they
            # are slow), give it the results, and let it answer with them.
            async for filler in self._run_custom_tools(turn, messages, asked):
                said_anything = True
                yield filler
        for clause in chunker.flush():
            said_anything = True
            yield self._mark_clause(turn, clause)
        if not said_anything and not (turn.end_call or turn.transfer_to or turn.dtmf_out):
            if turn.fallback_reason is None:
                turn.fallback_reason = "empty reply"
                log.warning(
                    "call %s: LLM returned nothing, saying the fallback line", self._call_id
                )
            yield self._mark_clause(turn, self.agent.fallback_line)

    async def _stream_clauses(
        self,
        turn: Turn,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        chunker: ClauseChunker,
        asked: list[ToolCall],
    ) -> AsyncIterator[str]:
        """One LLM stream as clauses; custom tool calls it makes are appended to ``asked``."""
        cfg = self.agent.llm
        stream = self.llm.stream(
            messages, tools, temperature=cfg.temperature, max_tokens=cfg.max_tokens
        )
        iterator = stream.__aiter__()
        try:
            first = "llm_first_token" not in turn.marks
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
                    # Not retried: the caller has already waited this long for an answer.
                    timeout = LLMError(f"no token within {cfg.first_token_timeout_s:.1f} s")
                    raise StageError("llm", timeout, retryable=False) from exc
                if first:
                    turn.marks["llm_first_token"] = self._clock()
                    first = False
                if isinstance(event, TextDelta):
                    if turn.reply_text(event.text):
                        self._emit(AgentTextDelta(event.text, turn.no))
                    for clause in chunker.push(event.text):
                        yield self._mark_clause(turn, clause)
                elif isinstance(event, ToolCall):
                    if self.tools is not None and self.tools.has(event.name):
                        self._emit(ToolInvoked(event.name, event.arguments))
                        asked.append(event)
                    else:
                        self._tool_called(turn, event)
        except StageError:
            raise
        except Exception as exc:  # LLMError, or whatever else the provider raised
            raise StageError("llm", exc) from exc
        finally:
            # Closing the stream closes the HTTP response, so the server stops generating
            # a reply nobody will hear (barge-in, discarded speculation).
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _run_custom_tools(
        self, turn: Turn, messages: list[dict[str, Any]], asked: list[ToolCall]
    ) -> AsyncIterator[str]:
        """Run the model's calls of custom tools, after the turn is released (they may
        have side effects); the results go into ``messages`` for the next round."""
        assert self.tools is not None
        await self._wait_released(turn)
        calls = [
            {
                "id": f"call_{turn.no}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(asked)
        ]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        for call, wire in zip(asked, calls, strict=True):
            ok, content = False, ""
            task = asyncio.ensure_future(self.tools.run(call.name, call.arguments))
            try:
                result = await asyncio.wait_for(asyncio.shield(task), _FILLER_AFTER_S)
            except TimeoutError:
                yield self._mark_clause(turn, _FILLER_LINE)
                result = await task
            ok = bool(getattr(result, "ok", False))
            content = getattr(result, "content", "") if ok else f"error: {result.error}"
            log.info(
                "call %s: tool %s %s in %.0f ms",
                self._call_id,
                call.name,
                "answered" if ok else "failed",
                getattr(result, "elapsed_ms", 0.0),
            )
            messages.append({"role": "tool", "tool_call_id": wire["id"], "content": content})

    async def _flow_clauses(self, turn: Turn) -> AsyncIterator[str]:
        """The flow's reply to the caller's words, as clauses (``voice_core.flows``)."""
        assert self.flow is not None
        cfg = self.agent.llm
        chunker = ClauseChunker()
        decided = FlowReply()
        try:
            async for piece in self.flow.reply(
                turn,
                turn.user_text or "",
                alternatives=list(getattr(turn.stt_stream, "partials", None) or []),
                llm=self.llm,
                run_tool=self._flow_tool if self.tools is not None else None,
                released=lambda: self._wait_released(turn),
                decided=decided,
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
            ):
                turn.marks.setdefault("llm_first_token", self._clock())
                if turn.reply_text(piece):
                    self._emit(AgentTextDelta(piece, turn.no))
                for clause in chunker.push(piece):
                    yield self._mark_clause(turn, clause)
            for clause in chunker.flush():
                yield self._mark_clause(turn, clause)
        except StageError:
            raise
        except Exception as exc:  # a model answer (respond=llm) or the extractor failed
            raise StageError("llm", exc) from exc
        turn.end_call = decided.end_call
        if decided.transfer_to is not None:
            if self.agent.transfer.target(decided.transfer_to) is not None:
                turn.transfer_to = decided.transfer_to
            else:
                log.warning(
                    "call %s: flow transfer to %r: not one of the agent's targets",
                    self._call_id,
                    decided.transfer_to,
                )

    async def _flow_tool(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        assert self.tools is not None
        self._emit(ToolInvoked(name, arguments))
        result = await self.tools.run(name, arguments)
        if not result.ok:
            return False, result.error
        try:
            return True, json.loads(result.content)
        except (TypeError, ValueError):
            return True, result.content

    async def _wait_released(self, turn: Turn) -> None:
        waiter = self._released.get(turn)
        if waiter is not None:
            await waiter()

    def _tools(self) -> list[dict[str, Any]]:
        tools = [END_CALL_TOOL] if self.agent.end_call.end_call_tool else []
        transfer = self.agent.transfer
        if transfer.enabled and transfer.targets:
            tools.append(transfer_call_tool([(t.name, t.description) for t in transfer.targets]))
        if self.agent.dtmf_tool:
            tools.append(SEND_DTMF_TOOL)
        if self.tools is not None:
            tools.extend(self.tools.definitions())
        return tools

    def _tool_called(self, turn: Turn, call: ToolCall) -> None:
        self._emit(ToolInvoked(call.name, call.arguments))
        if call.name == "end_call":
            turn.end_call = True
        elif call.name == "transfer_call":
            name = str(call.arguments.get("target", ""))
            transfer = self.agent.transfer
            # Only a target on the agent's list: a model talked into another name (or a
            # number) transfers nobody.
            if transfer.enabled and transfer.target(name) is not None:
                turn.transfer_to = name
            else:
                log.warning(
                    "call %s: LLM asked to transfer to %r, not allowed", self._call_id, name
                )
        elif call.name == "send_dtmf" and self.agent.dtmf_tool:
            digits = str(call.arguments.get("digits", ""))
            try:
                turn.dtmf_out = check_dtmf_digits(digits)
            except ValueError as exc:
                log.warning("call %s: LLM sent DTMF %r: %s", self._call_id, digits[:80], exc)
        else:
            log.warning("call %s: LLM called unknown tool %r", self._call_id, call.name)

    def _mark_clause(self, turn: Turn, clause: str) -> str:
        turn.marks.setdefault("first_clause", self._clock())
        return clause

    async def synthesize(
        self,
        turn: Turn,
        clauses: AsyncIterator[str],
        utt: Utterance,
        *,
        released: Callable[[], Awaitable[None]],
        queue: Callable[[Utterance, list[np.ndarray]], None],
    ) -> None:
        """TTS each clause as it arrives; frames go to ``queue`` once ``released`` returns.

        Clauses are pulled by a separate task so the LLM stream keeps flowing (and the
        next clause is ready) while the previous one is being synthesized. Waiting for
        ``released`` inside the TTS stream holds a speculative reply at its first audio.
        """
        clause_q: asyncio.Queue[str | None] = asyncio.Queue()
        self._released[turn] = released

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
                async for audio in self._speech(clause):
                    turn.marks.setdefault("tts_first_audio", self._clock())
                    frames.extend(framer.push(audio))
                    await released()
                    if self.flow is not None:
                        self.flow.settle()  # the turn is the caller's: its fork is the flow
                    queue(utt, frames)
                    frames = []
                frames.extend(framer.flush())
                await released()
                queue(utt, frames)
                utt.add_clause(clause, utt.queued - before)
            await pump_task
        finally:
            pump_task.cancel()
            self._released.pop(turn, None)

    async def _speech(self, clause: str) -> AsyncIterator[np.ndarray]:
        """The TTS's audio for ``clause``; what it raises, as ``StageError("tts")``."""
        try:
            async for audio in self.tts.synthesize(
                clause, length_scale=self.agent.tts.length_scale
            ):
                yield audio
        except Exception as exc:
            raise StageError("tts", exc) from exc


def _model_reads_values(agent: AgentConfig, llm: LanguageModel) -> bool:
    """Whether a flow asks the model to read values with a tool call: 'tools' always,
    'auto' unless the model is the embedded 135M one (it never emits a tool call)."""
    assert agent.flow is not None
    mode = agent.flow.extraction
    if mode != "auto":
        return mode == "tools"
    return getattr(llm, "model", EMBEDDED_MODEL) != EMBEDDED_MODEL
