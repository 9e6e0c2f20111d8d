"""The reply pipeline of one turn: final STT -> LLM token stream -> clause chunker -> TTS.

Each stage starts on the first piece of its input: clauses are cut from the token stream
as it arrives and synthesized one by one while the LLM goes on. The pipeline knows
nothing of playout or of the turn's place in the conversation; the session decides when
a turn's audio may be queued (``released``) and where its frames go (``queue``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np

from voice_core.audio.frames import FRAME_SAMPLES, Framer
from voice_core.chunker import ClauseChunker
from voice_core.config import AgentConfig
from voice_core.dialing import check_dtmf_digits
from voice_core.events import AgentTextDelta, SessionEvent, ToolInvoked
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
    ) -> None:
        self.agent = agent
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self._clock = clock
        self._emit = emit
        self._call_id = call_id

    def open_stream(self) -> Any:
        """The STT's per-utterance stream, if it has one, with the agent's vocabulary."""
        stream = getattr(self.stt, "stream", None)
        if stream is None:
            return None
        return stream(prompt=self.agent.stt.prompt or None)

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
        cfg = self.agent.llm
        tools = self._tools() or None
        messages = [*history]
        if not turn.published_user:
            messages.append({"role": "user", "content": turn.user_text or ""})
        chunker = ClauseChunker()
        said_anything = False
        stream = self.llm.stream(
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
                        said_anything = True
                        yield self._mark_clause(turn, clause)
                elif isinstance(event, ToolCall):
                    self._tool_called(turn, event)
            for clause in chunker.flush():
                said_anything = True
                yield self._mark_clause(turn, clause)
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
        if not said_anything and not (turn.end_call or turn.transfer_to or turn.dtmf_out):
            if turn.fallback_reason is None:
                turn.fallback_reason = "empty reply"
                log.warning(
                    "call %s: LLM returned nothing, saying the fallback line", self._call_id
                )
            yield self._mark_clause(turn, self.agent.fallback_line)

    def _tools(self) -> list[dict[str, Any]]:
        tools = [END_CALL_TOOL] if self.agent.end_call.end_call_tool else []
        transfer = self.agent.transfer
        if transfer.enabled and transfer.targets:
            tools.append(transfer_call_tool([(t.name, t.description) for t in transfer.targets]))
        if self.agent.dtmf_tool:
            tools.append(SEND_DTMF_TOOL)
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
                    queue(utt, frames)
                    frames = []
                frames.extend(framer.flush())
                await released()
                queue(utt, frames)
                utt.add_clause(clause, utt.queued - before)
            await pump_task
        finally:
            pump_task.cancel()

    async def _speech(self, clause: str) -> AsyncIterator[np.ndarray]:
        """The TTS's audio for ``clause``; what it raises, as ``StageError("tts")``."""
        try:
            async for audio in self.tts.synthesize(
                clause, length_scale=self.agent.tts.length_scale
            ):
                yield audio
        except Exception as exc:
            raise StageError("tts", exc) from exc
