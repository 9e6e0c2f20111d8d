"""Background work gives way to live turns: it waits while one is in flight, is cancelled
and rerun when one starts, and still completes; the engine's wrappers never leave a
hold behind."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from voice_core.live_work import LiveLLM, LiveSTT, LiveWork
from voice_core.llm.base import LLMError, TextDelta
from voice_core.stt.base import Transcription


class FakeAnalysis:
    """A background job that runs until ``finish`` is set, counting its starts."""

    def __init__(self) -> None:
        self.starts = 0
        self.running = asyncio.Event()
        self.finish = asyncio.Event()

    async def __call__(self) -> str:
        self.starts += 1
        self.running.set()
        try:
            await self.finish.wait()
        finally:
            self.running.clear()
        return "summary"


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_a_job_waits_while_a_live_turn_is_in_flight_then_completes() -> None:
    live = LiveWork()
    job = FakeAnalysis()
    job.finish.set()  # it would finish at once if it ran
    with live.hold("llm"):
        task = asyncio.create_task(live.run_in_background(job, quiet_s=0))
        for _ in range(20):
            await asyncio.sleep(0)
        assert job.starts == 0 and not task.done()
    assert await asyncio.wait_for(task, 5) == "summary"
    assert job.starts == 1 and live.preemptions == 0


async def test_a_live_turn_preempts_a_running_job_which_reruns_and_completes() -> None:
    live = LiveWork()
    job = FakeAnalysis()
    task = asyncio.create_task(live.run_in_background(job, quiet_s=0))
    await asyncio.wait_for(job.running.wait(), 5)
    with live.hold("stt"):  # a caller's turn starts: the job is cancelled
        await asyncio.wait_for(_until(lambda: not job.running.is_set()), 5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert job.starts == 1 and not job.running.is_set()
    await asyncio.wait_for(job.running.wait(), 5)  # rerun once the models are quiet
    job.finish.set()
    assert await asyncio.wait_for(task, 5) == "summary"
    assert job.starts == 2 and live.preemptions == 1


async def test_a_job_failure_reaches_the_caller() -> None:
    live = LiveWork()

    async def failing() -> None:
        raise ValueError("endpoint down")

    with pytest.raises(ValueError, match="endpoint down"):
        await live.run_in_background(failing, quiet_s=0)


class FakeLLM:
    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.closed = False

    async def stream(self, messages: list[dict[str, Any]], tools: Any = None, **kw: Any) -> Any:
        try:
            for i in range(5):
                if self.fail_after is not None and i == self.fail_after:
                    raise LLMError("connection reset")
                await asyncio.sleep(0)
                yield TextDelta(f"w{i} ")
        finally:
            self.closed = True


async def test_an_abandoned_llm_stream_leaves_no_hold_and_errors_are_counted() -> None:
    live = LiveWork()
    inner = FakeLLM()
    stream = LiveLLM(inner, live).stream([{"role": "user", "content": "hi"}])
    first = await stream.__anext__()
    assert first == TextDelta("w0 ") and live.in_flight == 0  # no hold across a yield
    await stream.aclose()  # barge-in: the reply is dropped mid-stream
    assert inner.closed and live.in_flight == 0

    failing = LiveLLM(FakeLLM(fail_after=2), live)
    with pytest.raises(LLMError):
        async for _ in failing.stream([]):
            pass
    assert live.errors["llm"] == 1 and live.in_flight == 0


class FakeStream:
    async def partial(self, audio: np.ndarray) -> Transcription:
        return Transcription("hel")

    async def final(self, audio: np.ndarray) -> Transcription:
        return Transcription("hello")


class FakeSTT:
    def __init__(self, seen: list[int], live: LiveWork) -> None:
        self.seen, self.live = seen, live

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        self.seen.append(self.live.in_flight)
        return Transcription("hello")

    def stream(self, prompt: str | None = None) -> FakeStream:
        return FakeStream()


async def test_stt_finals_count_as_live_work_partials_do_not() -> None:
    live = LiveWork()
    seen: list[int] = []
    stt = LiveSTT(FakeSTT(seen, live), live)
    assert (await stt.transcribe(np.zeros(160, dtype=np.int16))).text == "hello"
    assert seen == [1]  # held while it ran
    stream = stt.stream(prompt=None)
    assert (await stream.final(np.zeros(160, dtype=np.int16))).text == "hello"
    assert (await stream.partial(np.zeros(160, dtype=np.int16))).text == "hel"
    assert live.in_flight == 0
