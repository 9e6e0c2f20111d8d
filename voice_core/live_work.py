"""Live model work in flight, so background work can give way to it.

Every call of a process shares one Whisper, one Piper voice and one embedded
llama.cpp server (several slots, but two cores). Post-call analysis runs on the
same LLM; when it decodes while a caller waits for a reply, the reply waits too
(measured here: a live first token 0.04 s idle, 19-36 s behind an analysis
prompt being processed on a loaded machine). So the engine counts its live model
work, a turn's final STT and each step of its LLM stream, and
background work runs only when none has been in flight for ``quiet_s``; when
live work starts while a background job runs, the job is cancelled (closing its
HTTP stream stops llama.cpp decoding it) and run again from the start once the
models are quiet. llama.cpp keeps the job's processed prompt in its slot cache,
so a retry does not pay for it again.

Holds are taken around each awaited step, never across a ``yield``: a consumer
that abandons a stream (barge-in, a discarded speculation) cannot leave a hold
behind. The gaps between steps of one turn are microseconds; ``quiet_s`` covers them.

Only the event loop's thread touches this object. Waiters are futures of the loop
that waits, so one engine serves tests that each run their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from voice_core.llm.base import LanguageModel, LLMEvent
from voice_core.stt.base import SpeechToText, Transcription

T = TypeVar("T")

# Background work starts only after live work has been idle this long: longer than
# the gap between a turn's STT final and its LLM request, or between two clauses.
DEFAULT_QUIET_S = 0.5


class LiveWork:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight = 0
        self._idle_since = clock()
        self._waiters: list[asyncio.Future[None]] = []  # woken on every change
        # Failures of live model steps by stage (stt, llm): read by /metrics.
        self.errors: Counter[str] = Counter()
        self.preemptions = 0  # background jobs cancelled because live work started

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def hold(self, stage: str) -> Iterator[None]:
        """Live work of ``stage`` is in flight for the duration of the block."""
        self._in_flight += 1
        if self._in_flight == 1:
            self._notify()
        try:
            yield
        except (asyncio.CancelledError, StopAsyncIteration, GeneratorExit):
            raise
        except Exception:
            self.errors[stage] += 1
            raise
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle_since = self._clock()
                self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                with contextlib.suppress(RuntimeError):  # its loop has closed
                    fut.set_result(None)

    async def _changed(self, timeout: float | None = None) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def wait_quiet(self, quiet_s: float = DEFAULT_QUIET_S) -> None:
        """Return once no live work has been in flight for ``quiet_s``."""
        while True:
            if self._in_flight:
                await self._changed()
                continue
            left = self._idle_since + quiet_s - self._clock()
            if left <= 0:
                return
            await self._changed(left)

    async def run_in_background(
        self, job: Callable[[], Awaitable[T]], quiet_s: float = DEFAULT_QUIET_S
    ) -> T:
        """Run ``job`` while no live work is in flight; cancel it and start it again
        whenever live work starts. Returns (or raises) what the job's run that was
        let finish returns (or raises)."""
        while True:
            await self.wait_quiet(quiet_s)
            task = asyncio.ensure_future(job())
            try:
                while not task.done() and not self._in_flight:
                    changed = asyncio.ensure_future(self._changed())
                    try:
                        await asyncio.wait([task, changed], return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
            except asyncio.CancelledError:
                task.cancel()
                raise
            if task.done():
                return task.result()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self.preemptions += 1


class LiveLLM:
    """The session's LLM, each step of its stream counted as live work."""

    def __init__(self, llm: LanguageModel, live: LiveWork) -> None:
        self.inner = llm
        self._live = live

    def __getattr__(self, name: str) -> Any:  # base_url, model, ... of the real client
        return getattr(self.inner, name)

    async def stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> AsyncIterator[LLMEvent]:
        iterator = self.inner.stream(messages, tools, **kw).__aiter__()
        try:
            while True:
                with self._live.hold("llm"):
                    try:
                        event = await iterator.__anext__()
                    except StopAsyncIteration:
                        return
                yield event
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class _LiveSTTStream:
    """An utterance's STT stream: its final counts as live work, its partials do not
    (a partial is a nicety; counting them would keep background work out for as long
    as anyone speaks)."""

    def __init__(self, stream: Any, live: LiveWork) -> None:
        self.inner = stream
        self._live = live

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def final(self, audio: np.ndarray) -> Transcription:
        with self._live.hold("stt"):
            return await self.inner.final(audio)


class LiveSTT:
    """The session's STT: whole-utterance transcriptions and stream finals count."""

    def __init__(self, stt: SpeechToText, live: LiveWork) -> None:
        self.inner = stt
        self._live = live
        if hasattr(stt, "stream"):
            self.stream = self._stream  # the session looks ``stream`` up with getattr

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def transcribe(self, audio: np.ndarray, **kw: Any) -> Transcription:
        with self._live.hold("stt"):
            return await self.inner.transcribe(audio, **kw)

    def _stream(self, **kw: Any) -> _LiveSTTStream:
        return _LiveSTTStream(self.inner.stream(**kw), self._live)  # type: ignore[attr-defined]
