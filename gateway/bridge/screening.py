"""Answering-machine screening of an outbound call, between the transport and the engine.

The sans-I/O ``voice_core.answering_machine.Screening`` judges the callee's first
seconds; this module acts on its verdicts with the engine session's public API:

- while the greeting is judged, caller frames go to the screening, not the engine,
  and the engine session is not started yet, so the agent says nothing over the
  greeting (nor does its silence watchdog run);
- a short greeting, then a pause: its words are transcribed first (a machine's
  "leave a message after the tone" is no person); then
- a person: the session starts and says the welcome the bridge held back (an agent
  without one hears the person's "Hello?" instead, as it was said);
- a machine: its greeting is transcribed onto the record (a ``system`` line), then
  the agent hangs up, or waits for the beep (or the greeting's end) and leaves its
  message; the call ends as ``voicemail:<what we did>``, status ``voicemail``.
  The machine's own audio never reaches the engine, so nothing it records can cut
  the message short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from voice_core.answering_machine import (
    DetectorConfig,
    MachineAnswered,
    MessageCue,
    PersonAnswered,
    Screening,
    ScreeningEvent,
    ScreeningLimits,
    WordsNeeded,
)
from voice_core.config import VoicemailConfig
from voice_core.end_reasons import CallEnd, EndReason
from voice_core.session import CallSession
from voice_core.stt.base import SpeechToText
from voice_core.vad import WebRtcVad

# What the end reason's detail says we did: voicemail:hung_up, voicemail:message_left.
HUNG_UP = "hung_up"
MESSAGE_LEFT = "message_left"
# The greeting's transcription is for the record only: never hold the message for it.
_TRANSCRIBE_TIMEOUT_S = 10.0
# Frames a person said before the verdict, replayed to an agent without a welcome: the
# screening decides within ~machine_speech_s + a pause, well under this.
_HELD_FRAMES = 400

_VAR = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def render_context(text: str | None, context: dict[str, Any]) -> str | None:
    """``{{name}}`` becomes the call context's value (left as is if absent), as in a
    welcome line (``api.agents.schemas.render_vars``)."""
    if not text or not context:
        return text
    return _VAR.sub(lambda m: str(context.get(m.group(1), m.group(0))), text)


class CallScreen:
    """One outbound call's screening. ``push`` takes every caller frame while ``active``;
    ``hang_up`` ends the call from our side (the bridge's ``hangup``)."""

    def __init__(
        self,
        cfg: VoicemailConfig,
        session: CallSession,
        *,
        welcome: str | None,
        context: dict[str, Any],
        stt: SpeechToText | None,
        vad_aggressiveness: int,
        hang_up: Callable[[CallEnd], Awaitable[None]],
        log: logging.Logger,
        call_id: str,
    ) -> None:
        self.cfg = cfg
        self.session = session
        self.welcome = welcome
        self.message = render_context(cfg.message, context)
        self.screening = Screening(
            DetectorConfig(machine_speech_s=cfg.machine_speech_s),
            ScreeningLimits(
                no_greeting_s=cfg.no_greeting_s,
                beep_timeout_s=cfg.beep_timeout_s,
                greeting_end_ms=cfg.greeting_end_ms,
            ),
            confirm_words=stt is not None,
        )
        self._vad = WebRtcVad(vad_aggressiveness)
        self._stt = stt
        self._hang_up = hang_up
        self.log = log
        self.call_id = call_id
        self.active = True  # caller frames come here, not to the engine
        self.machine = False  # a machine answered: however the call ends, it is voicemail
        self._held: list[np.ndarray] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def push(self, frame: np.ndarray) -> None:
        if len(self._held) < _HELD_FRAMES:
            self._held.append(frame)
        for event in self.screening.push(frame, self._vad.is_speech(frame)):
            self._on(event)

    def _on(self, event: ScreeningEvent) -> None:
        if isinstance(event, PersonAnswered):
            self.log.info("call %s: a person answered (%s)", self.call_id, event.why)
            self.active = False
            if not self.welcome:
                # Nothing to greet them with: the agent answers what they said.
                for frame in self._held:
                    self.session.push_audio(frame)
            self._held = []
            self._run(self._greet())
        elif isinstance(event, WordsNeeded):
            self._run(self._confirm())
        elif isinstance(event, MachineAnswered):
            self.machine = True
            self._held = []
            self.log.info("call %s: an answering machine answered (%s)", self.call_id, event.why)
            if self.cfg.action == "hang_up":
                self._run(self._leave(None, event.why))
        elif isinstance(event, MessageCue) and self.cfg.action == "leave_message":
            self.log.info("call %s: leaving the message (%s)", self.call_id, event.why)
            self._run(self._leave(self.message, event.why))

    def _run(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                # A screening bug must not leave the call silent forever: end it.
                self.log.exception("call %s: answering-machine screening failed", self.call_id)
                await self._hang_up(CallEnd(EndReason.ERROR, "screening"))

        task = asyncio.create_task(guarded(), name=f"screen:{self.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self) -> None:
        """A short greeting's words decide: a machine phrase, or a person."""
        text = await self._transcribe(self.screening.greeting_audio)
        for event in self.screening.heard(text):
            self._on(event)

    async def _greet(self) -> None:
        await self.session.start()
        if self.welcome:
            await self.session.say(self.welcome)

    async def _leave(self, message: str | None, why: str) -> None:
        greeting = await self._transcribe(self.screening.greeting_audio)
        await self.session.start()
        self.session.note(f"answering machine ({why}): {greeting or '(no words heard)'}")
        if message:
            await self.session.say(message)
            await self._hang_up(CallEnd(EndReason.VOICEMAIL, MESSAGE_LEFT))
        else:
            await self._hang_up(CallEnd(EndReason.VOICEMAIL, HUNG_UP))

    async def _transcribe(self, audio: np.ndarray) -> str:
        if self._stt is None or audio.size == 0:
            return ""
        try:
            result = await asyncio.wait_for(self._stt.transcribe(audio), _TRANSCRIBE_TIMEOUT_S)
        except Exception as exc:
            self.log.warning("call %s: greeting not transcribed: %s", self.call_id, exc)
            return ""
        return result.text.strip()

    def end_of(self, end: CallEnd) -> CallEnd:
        """The call's end as the record keeps it: once a machine answered, a line that
        went dead (the machine stopped recording) still reached voicemail."""
        hung_up_on_us = end.reason in (EndReason.CALLER_HANGUP, EndReason.CALLER_DISCONNECTED)
        if self.machine and hung_up_on_us:
            return CallEnd(EndReason.VOICEMAIL, f"the machine hung up ({end})")
        return end

    async def aclose(self) -> None:
        for task in list(self._tasks):
            if task is asyncio.current_task():
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
