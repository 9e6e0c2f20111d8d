"""Call records and the agent directory."""

from __future__ import annotations

from gateway.agents import DEMO_AGENT_ID, InMemoryAgentDirectory
from gateway.calls import CallRecord, CallStatus, Direction, InMemoryCallStore


async def test_final_status_sticks_when_callbacks_arrive_out_of_order() -> None:
    store = InMemoryCallStore()
    await store.create(CallRecord(id="c1", agent_id="a", direction=Direction.OUTBOUND))
    assert await store.set_status("c1", CallStatus.RINGING)
    assert await store.set_status("c1", CallStatus.IN_PROGRESS)
    assert await store.set_status("c1", CallStatus.COMPLETED, reason="caller_hangup")
    assert not await store.set_status("c1", CallStatus.RINGING)  # late callback
    record = await store.get("c1")
    assert record is not None
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    assert [s for s, _ in record.status_history] == [
        "queued",
        "ringing",
        "in_progress",
        "completed",
    ]
    assert record.duration_s is not None and record.duration_s >= 0


async def test_records_handed_out_are_snapshots() -> None:
    store = InMemoryCallStore()
    await store.create(CallRecord(id="c1", agent_id="a", direction=Direction.INBOUND))
    snapshot = await store.get("c1")
    assert snapshot is not None
    snapshot.end_reason = "tampered"
    assert (await store.get("c1")).end_reason is None  # type: ignore[union-attr]


async def test_numbers_map_to_agents_however_the_carrier_formats_them() -> None:
    directory = InMemoryAgentDirectory.with_demo_agent()
    assert await directory.for_number("+1 (555) 010-0100") == DEMO_AGENT_ID
    assert await directory.for_number("+15559999999") is None
    agent = await directory.get(DEMO_AGENT_ID)
    assert agent is not None and "Bright Smile Dental" in (agent.welcome_message or "")
