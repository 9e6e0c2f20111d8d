"""WS /api/v1/live and the Python SDK against a real server: one real simulated call
feeds the live-event test and the SDK's call, recording and pagination checks."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import pytest
import websockets

from api.auth import create_key, create_organization
from api.postcall.signing import sign
from voxline import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    ValidationError,
    verify_signature,
)

LINES = ["Hi, can I book a cleaning on Tuesday?", "Great, thank you, bye."]


def ws_url(running) -> str:
    return running.base_url.replace("http", "ws", 1) + "/api/v1/live"


async def other_org_key(running) -> str:
    async with running.app.state.db_sessions() as db:
        org = await create_organization(db, "Other org")
        _, key = await create_key(db, org.id, "other")
        await db.commit()
    return key


@pytest.fixture(scope="module")
async def finished_call(running, quick_agent):
    """Place one simulated call while two watchers listen: ours and another org's."""
    events: list[tuple[float, dict]] = []
    foreign: list[dict] = []
    vx = AsyncClient(running.base_url, running.api_key)

    async def watch() -> None:
        async for event in vx.live():
            events.append((time.time(), event))
            if event["type"] == "call.ended":
                return

    async def watch_foreign(key: str) -> None:
        async with websockets.connect(ws_url(running)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": key}))
            async for raw in ws:
                foreign.append(json.loads(raw))

    watcher = asyncio.create_task(watch())
    other = asyncio.create_task(watch_foreign(await other_org_key(running)))
    while not events:  # subscribed (hello received) before the call starts
        await asyncio.sleep(0.05)
    placed = await vx.calls.dispatch(
        quick_agent,
        "+15550177001",
        call_context={"simulation": {"outcome": "answer", "lines": LINES}},
    )
    await asyncio.wait_for(watcher, 120)
    other.cancel()
    detail = await vx.calls.wait(placed.call_id, timeout=30, poll_s=0.2)
    await vx.aclose()
    return placed.call_id, events, foreign, detail


async def test_live_feed_streams_a_call_from_start_to_end(finished_call) -> None:
    call_id, timed, foreign, _ = finished_call
    events = [e for _, e in timed]
    assert events[0]["type"] == "hello" and events[0]["transport"] == "local"
    mine = [e for e in events if e.get("call_id") == call_id]
    kinds = [e["type"] for e in mine]
    assert kinds[0] == "call.started" and mine[0]["status"] == "queued"
    assert kinds[-1] == "call.ended" and mine[-1]["status"] == "completed"
    statuses = [e["status"] for e in mine if e["type"] == "call.status"]
    assert "in_progress" in statuses and statuses[-1] == "completed"
    user = [e for e in mine if e["type"] == "transcript" and e["role"] == "user"]
    assert any(not e["final"] for e in user), "partial transcripts stream while the caller talks"
    finals = [e["text"].lower() for e in user if e["final"]]
    assert any("clean" in t for t in finals), finals
    assert any(e["type"] == "transcript" and e["role"] == "agent" for e in mine)
    assert any(e["type"] == "agent.text" for e in mine)
    states = {e["state"] for e in mine if e["type"] == "call.state"}
    assert {"thinking", "speaking", "listening"} <= states
    latency = [e for e in mine if e["type"] == "turn.latency"]
    assert latency and "response" in latency[0]["stages_ms"]
    assert latency[0]["marks_ms"]["speech_end"] == 0.0
    # Another organization's watcher saw none of it.
    assert foreign and foreign[0]["type"] == "hello"
    assert not [e for e in foreign if e.get("call_id") == call_id]
    # Server event time -> received by the client (same clock): reported, not asserted.
    delays = [(t - e["ts"]) * 1000 for t, e in timed if e.get("call_id") == call_id]
    print(
        f"\nlive event delay over {len(delays)} events: median "
        f"{statistics.median(delays):.1f} ms, max {max(delays):.1f} ms"
    )


async def test_live_feed_refuses_bad_keys_and_unknown_types(running) -> None:
    async with websockets.connect(ws_url(running)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "vx_wrong"}))
        error = json.loads(await ws.recv())
        assert error == {"type": "error", "detail": "invalid or revoked API key"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 1008
    async with websockets.connect(ws_url(running)) as ws:
        await ws.send("hello")
        assert "first message must be" in json.loads(await ws.recv())["detail"]
    headers = {"Authorization": f"Bearer {running.api_key}"}
    async with websockets.connect(
        ws_url(running) + "?types=nope", additional_headers=headers
    ) as ws:
        assert "unknown event type" in json.loads(await ws.recv())["detail"]
    async with websockets.connect(ws_url(running), additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_a_watcher_that_stops_reading_is_closed_with_the_reason(running) -> None:
    hub = running.app.state.live
    saved, hub.queue_size = hub.queue_size, 5
    try:
        headers = {"Authorization": f"Bearer {running.api_key}"}
        async with websockets.connect(
            ws_url(running) + "?types=dtmf", additional_headers=headers
        ) as ws:
            hello = json.loads(await ws.recv())
            org = hello["org_id"]
            # Published in one go: the socket's writer gets no chance to drain the queue.
            for i in range(50):
                hub.publish(org, {"type": "dtmf", "ts": 0, "call_id": "c", "digits": str(i)})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == 1013
            assert "slow consumer" in closed.value.rcvd.reason
    finally:
        hub.queue_size = saved


async def test_async_sdk_reads_the_finished_call(running, finished_call, tmp_path) -> None:
    call_id, _, _, detail = finished_call
    assert detail.status == "completed" and detail.ended
    assert detail.transcript and detail.transcript[0].speaker == "agent"
    assert detail.latency and "response" in detail.latency[0].stages_ms
    async with AsyncClient(running.base_url, running.api_key) as vx:
        wav = await vx.calls.recording(call_id, tmp_path / "call.wav")
        assert wav[:4] == b"RIFF" and (tmp_path / "call.wav").stat().st_size == len(wav)
        seen = [c.id async for c in vx.calls.iter(limit=1)]
        assert call_id in seen and len(seen) == len(set(seen))
        with pytest.raises(ConflictError) as conflict:
            await vx.calls.hangup(call_id)
        assert conflict.value.status_code == 409 and "already ended" in conflict.value.detail
        with pytest.raises(NotFoundError):
            await vx.calls.get("call_nope")
        with pytest.raises(NotFoundError):
            await vx.deliveries.retry("dlv_nope")
        assert await vx.deliveries.list(call_id=call_id) == []
    async with AsyncClient(running.base_url, "vx_wrong") as bad:
        with pytest.raises(AuthenticationError) as auth:
            await bad.agents.list()
        assert auth.value.status_code == 401 and "invalid" in auth.value.detail


def sync_agent_flow(base_url: str, key: str) -> None:
    with Client(base_url, key) as vx:
        agent = vx.agents.create({"name": "SDK agent", "welcome_message": "Hello."})
        assert agent.name == "SDK agent" and agent.version == 1
        spec = {**agent.spec, "welcome_message": "Hello again."}
        assert vx.agents.update(agent.id, spec).version == 2
        assert [v.version for v in vx.agents.versions(agent.id)] == [2, 1]
        restored = vx.agents.restore(agent.id, 1)
        assert restored.version == 3 and restored.spec["welcome_message"] == "Hello."
        assert agent.id in [a.id for a in vx.agents.list()]
        with pytest.raises(ValidationError) as bad:
            vx.agents.update(agent.id, {"name": "", "endpointing": {"vad_aggressiveness": 9}})
        fields = bad.value.field_errors
        assert "body.name" in fields and "body.endpointing.vad_aggressiveness" in fields
        with pytest.raises(ValidationError) as hook:
            vx.webhooks.test("http://127.0.0.1:9/hook")  # private targets refused here
        assert hook.value.errors and hook.value.status_code == 422
        vx.agents.delete(agent.id)
        with pytest.raises(NotFoundError):
            vx.agents.get(agent.id)


async def test_sync_sdk_agents_versions_and_errors(running) -> None:
    # The server runs in this event loop: the blocking client runs in a thread.
    await asyncio.to_thread(sync_agent_flow, running.base_url, running.api_key)


def sync_campaign_flow(base_url: str, key: str, agent_id: str) -> dict:
    def contact(i: int) -> dict:
        return {
            "phone_number": f"+1555017{i:04d}",
            "simulation": {"outcome": "busy", "ring_s": 0.2},
        }

    with Client(base_url, key) as vx:
        csv = b"phone_number,first_name\n+15550178001,Ann\nnot-a-number,Bob\n"
        later = vx.campaigns.create(
            "CSV later",
            agent_id,
            csv_file=csv,
            schedule={"start_at": "2099-01-01T09:00:00", "timezone": "UTC"},
        )
        assert later.accepted == 1 and later.rejected[0].phone_number == "not-a-number"
        added = vx.campaigns.add_contacts(later.id, contacts_csv="phone\n+15550178002\n")
        assert added.accepted == 1 and added.summary.total_contacts == 2
        assert vx.campaigns.pause(later.id).status == "paused"
        with pytest.raises(ConflictError):
            vx.campaigns.pause(later.id)
        assert vx.campaigns.cancel(later.id).status == "cancelled"

        now = vx.campaigns.create(
            "Busy now",
            agent_id,
            contacts=[contact(i) for i in range(8010, 8014)],
            concurrency=1,
            retry={"on": []},
        )
        assert vx.campaigns.pause(now.id).status == "paused"
        assert vx.campaigns.resume(now.id).status == "in_progress"
        events = list(vx.campaigns.events(now.id))
        status = vx.campaigns.live_status(now.id)
        assert status.done and status.summary.busy == 4 and status.summary.finished == 4
        assert vx.campaigns.get(now.id).summary == status.summary
        page = vx.calls.list(bulk_call_id=now.id, limit=10)
        assert len(page.data) == 4 and all(c.status == "busy" for c in page.data)
        return {"events": [(e.event, e.data) for e in events]}


async def test_sync_sdk_campaigns_csv_controls_and_events(running, quick_agent) -> None:
    out = await asyncio.to_thread(
        sync_campaign_flow, running.base_url, running.api_key, quick_agent
    )
    kinds = [k for k, _ in out["events"]]
    assert kinds[-1] == "status" and out["events"][-1][1]["campaign_status"] == "completed"
    busy = [d["summary"]["busy"] for k, d in out["events"] if k == "summary"]
    assert busy == sorted(busy) and busy[-1] == 4


def test_verify_signature_is_re_exported() -> None:
    body = b'{"event": "call.completed"}'
    header = sign("whsec_x", body)
    assert verify_signature("whsec_x", header, body)
    assert not verify_signature("whsec_y", header, body)


async def test_connection_errors_are_voxline_errors() -> None:
    from voxline import APIConnectionError

    async with AsyncClient("http://127.0.0.1:9", "vx_x", timeout=2) as vx:
        with pytest.raises(APIConnectionError):
            await vx.agents.list()
