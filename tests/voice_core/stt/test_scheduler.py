"""The STT thread runs finals before partials and skips what nobody waits for."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voice_core.stt.scheduler import FINAL_PRIORITY, PARTIAL_PRIORITY, DecodeScheduler


async def test_a_final_overtakes_queued_partials() -> None:
    sched = DecodeScheduler()
    gate = threading.Event()
    ran: list[str] = []
    busy = asyncio.ensure_future(sched.run(gate.wait))  # the thread is busy decoding
    await asyncio.sleep(0.05)
    partials = [
        asyncio.ensure_future(sched.run(lambda i=i: ran.append(f"p{i}"), PARTIAL_PRIORITY))
        for i in range(3)
    ]
    final = asyncio.ensure_future(sched.run(lambda: ran.append("final"), FINAL_PRIORITY))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(busy, final, *partials)
    assert ran == ["final", "p0", "p1", "p2"]
    sched.close()


async def test_a_cancelled_job_is_never_run() -> None:
    sched = DecodeScheduler()
    gate = threading.Event()
    ran: list[str] = []
    busy = asyncio.ensure_future(sched.run(gate.wait))
    await asyncio.sleep(0.05)
    stale = asyncio.ensure_future(sched.run(lambda: ran.append("stale"), PARTIAL_PRIORITY))
    await asyncio.sleep(0.05)
    stale.cancel()  # the caller's turn ended: its partial is not wanted
    await asyncio.sleep(0.05)
    gate.set()
    await busy
    await sched.run(lambda: ran.append("next"))
    assert ran == ["next"]
    sched.close()


async def test_a_decode_error_reaches_its_caller_and_the_thread_goes_on() -> None:
    sched = DecodeScheduler()

    def boom() -> None:
        raise ValueError("expected (1,80,3000)")

    with pytest.raises(ValueError, match="1,80,3000"):
        await sched.run(boom)
    assert await sched.run(lambda: 42) == 42
    sched.close()
