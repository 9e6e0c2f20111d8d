"""Fast hermetic stand-ins for the model stages, beside the real-model tests.

They make the turn logic testable in milliseconds; test_engine_models.py proves
the same behaviour with the real models.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from voice_core.llm.base import LLMError, LLMEvent, TextDelta, ToolCall
from voice_core.session import CallSession
from voice_core.stt.base import Transcription

VOICED_AMPLITUDE = 5000


def tone(ms: int, amplitude: int = VOICED_AMPLITUDE) -> np.ndarray:
    t = np.arange(16 * ms) / 16000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


class FakeVad:
    """Voiced = loud. Real webrtcvad is covered by the real-model tests."""

    def is_speech(self, frame: np.ndarray) -> bool:
        return int(np.abs(frame.astype(np.int32)).max()) > 1000


class FakeSTT:
    def __init__(self, text: str | Callable[[np.ndarray], str] = "I need an appointment") -> None:
        self._text = text
        self.calls: list[int] = []  # audio lengths in samples
        self.error: Exception | None = None

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        self.calls.append(audio.size)
        await asyncio.sleep(0.01)
        if self.error:
            raise self.error
        text = self._text(audio) if callable(self._text) else self._text
        return Transcription(text, no_speech_prob=0.9 if not text else 0.01)


Script = list[LLMEvent] | Exception | Callable[[], AsyncIterator[LLMEvent]]


class FakeLLM:
    def __init__(self, *scripts: Script, token_delay: float = 0.005) -> None:
        self.scripts = list(scripts)
        self.token_delay = token_delay
        self.calls: list[list[dict[str, Any]]] = []
        self.closed_early = 0
        self.prewarms = 0

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        temperature: float = 0.6,
        max_tokens: int = 120,
    ) -> AsyncIterator[LLMEvent]:
        if messages[-1]["role"] == "system":
            self.prewarms += 1  # the session warming the prompt cache; not a reply
            return
        self.calls.append(list(messages))
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        if isinstance(script, Exception):
            raise script
        finished = False
        try:
            if callable(script):
                async for ev in script():
                    yield ev
            else:
                for ev in script:
                    await asyncio.sleep(self.token_delay)
                    yield ev
            finished = True
        finally:
            if not finished:
                self.closed_early += 1


def words(text: str) -> list[LLMEvent]:
    """A reply streamed word by word, like an LLM's tokens."""
    parts = text.split(" ")
    return [TextDelta(p if i == 0 else " " + p) for i, p in enumerate(parts)]


def end_call_reply(text: str) -> list[LLMEvent]:
    return [*words(text), ToolCall("end_call", {"reason": "caller said goodbye"})]


def failing(message: str = "connection refused") -> Exception:
    return LLMError(message)


class FakeTTS:
    """60 ms of tone per word, so audio length tracks text length."""

    def __init__(self, ms_per_word: int = 60) -> None:
        self.ms_per_word = ms_per_word
        self.texts: list[str] = []

    async def synthesize(
        self, text: str, *, length_scale: float = 1.0
    ) -> AsyncIterator[np.ndarray]:
        self.texts.append(text)
        await asyncio.sleep(0.005)
        n = len(text.split())
        if n:
            yield tone(self.ms_per_word * n, amplitude=3000)


class Collector:
    """Reads a session's events in the background; tests wait for what they expect."""

    def __init__(self, session: CallSession) -> None:
        self.events: list[Any] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(session))

    async def _run(self, session: CallSession) -> None:
        async for ev in session.events():
            self.events.append(ev)
            self._changed.set()
        self._changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(
        self, kind: type, pred: Callable[[Any], bool] = lambda e: True, timeout: float = 10.0
    ) -> Any:
        async def look() -> Any:
            while True:
                for e in self.events:
                    if isinstance(e, kind) and pred(e):
                        return e
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(look(), timeout)


class FakeClock:
    """A clock the test moves by hand, for the sans-I/O turn and playout objects."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
