"""Checkpoints: what was said reaches the record while the call goes on, without the
event pump ever waiting for the store, and never after the final record."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.bridge.checkpoint import Checkpoints
from gateway.calls import CallRecord, Direction, InMemoryCallStore


class SlowStore(InMemoryCallStore):
    """Each write takes a while, as a commit on a busy database does."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.writes: list[dict[str, Any]] = []

    async def update(self, call_id: str, **fields: Any) -> CallRecord:
        await self.release.wait()
        self.writes.append(fields)
        return await super().update(call_id, **fields)


async def test_marks_during_a_slow_write_coalesce_into_one_write_of_the_latest() -> None:
    store = SlowStore()
    await store.create(CallRecord(id="call_cp", agent_id="a", direction=Direction.INBOUND))
    said: list[dict[str, Any]] = []
    checkpoints = Checkpoints(store, "call_cp", lambda: {"transcript": list(said)})
    for n in range(5):
        said.append({"speaker": "caller", "text": f"line {n}", "t": float(n)})
        checkpoints.mark()  # returns at once: the pump does not wait
    assert store.writes == []
    store.release.set()
    await checkpoints.close()
    # The first write took what was there when it ran, the marks made while it was in
    # flight became one more write; the record ends with every line.
    assert len(store.writes) <= 2
    record = await store.get("call_cp")
    assert record is not None and [e["text"] for e in record.transcript] == [
        f"line {n}" for n in range(5)
    ]


async def test_no_checkpoint_lands_after_close() -> None:
    store = SlowStore()
    store.release.set()
    await store.create(CallRecord(id="call_cp", agent_id="a", direction=Direction.INBOUND))
    checkpoints = Checkpoints(store, "call_cp", lambda: {"transcript": [{"text": "early"}]})
    checkpoints.mark()
    await checkpoints.close()
    await store.update("call_cp", transcript=[{"text": "final"}])  # the bridge's finish
    checkpoints.mark()  # a late event after the finish began
    await asyncio.sleep(0.01)
    record = await store.get("call_cp")
    assert record is not None and record.transcript == [{"text": "final"}]
