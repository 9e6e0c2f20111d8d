"""Two `voxline serve` processes on one PostgreSQL and one Redis, as a fleet runs.

- a call carried by process B is listed, watched live and hung up through process A;
- SIGTERM on A: A turns unready at once, its active call finishes normally, then A
  exits; B keeps taking calls meanwhile.
(Campaigns shared by two processes and SIGKILL without losing contacts or deliveries
are in test_campaign_durability.py and test_delivery_restart.py.)
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import httpx
import pytest
import websockets

from tests.api.conftest import _pg_create_database, _pg_drop_database
from tests.e2e.test_campaign_durability import Server, client

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_up() -> bool:
    try:
        import redis.asyncio as redis

        r = redis.from_url(REDIS_URL)
        try:
            return bool(await asyncio.wait_for(r.ping(), 2))
        finally:
            await r.aclose()
    except Exception:
        return False


@pytest.fixture
async def fleet(tmp_path):
    url = await _pg_create_database()
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: fleet tests skipped")
    if not await redis_up():
        await _pg_drop_database(url)
        pytest.skip(f"Redis not reachable at {REDIS_URL}: fleet tests skipped")
    data = tmp_path / "data"
    env = {
        "VOXLINE_REDIS_URL": REDIS_URL,
        # a channel prefix of our own: other tests or processes on this Redis see nothing
        "VOXLINE_LIVE_CHANNEL_PREFIX": f"voxline-test-{uuid.uuid4().hex[:8]}",
        "VOXLINE_DRAIN_TIMEOUT_S": "60",
    }
    a = Server(data, url, tmp_path / "a.log", env)
    servers = [a]
    try:
        await a.ready()  # the first start migrates and bootstraps
        b = Server(data, url, tmp_path / "b.log", env)
        servers.append(b)
        await b.ready()
        yield a, b, data
    finally:
        for s in servers:
            s.stop()
        await _pg_drop_database(url)


async def dispatch(api: httpx.AsyncClient, lines: list[str]) -> str:
    agent_id = (await api.get("/api/v1/agents")).json()[0]["id"]
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": agent_id,
            "to_number": "+15550190000",
            "call_context": {"simulation": {"outcome": "answer", "lines": lines}},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["call_id"]


async def wait_status(api: httpx.AsyncClient, call_id: str, statuses: set[str], timeout: float):
    async with asyncio.timeout(timeout):
        while True:
            detail = (await api.get(f"/api/v1/calls/{call_id}")).json()
            if detail["status"] in statuses:
                return detail
            await asyncio.sleep(0.3)


async def test_a_call_on_b_is_listed_watched_and_hung_up_through_a(fleet) -> None:
    a, b, data = fleet
    key = (data / "demo_api_key").read_text().strip()
    async with client(a, data) as api_a, client(b, data) as api_b:
        ws_url = a.base.replace("http", "ws") + "/api/v1/live"
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Bearer {key}"}
        ) as live:
            call_id = await dispatch(api_b, ["Hello, I have a long question about my bill."] * 5)
            seen: list[dict] = []

            async def watch() -> None:
                async for raw in live:
                    event = json.loads(raw)
                    if event.get("call_id") == call_id:
                        seen.append(event)
                        if event["type"] == "transcript":
                            return

            await asyncio.wait_for(watch(), 60)  # B's call, seen live through A
            assert any(e["type"] in ("call.started", "call.status") for e in seen)
            listed = (await api_a.get("/api/v1/calls", params={"status": "in_progress"})).json()
            assert call_id in [c["id"] for c in listed["data"]]
            r = await api_a.post(f"/api/v1/calls/{call_id}/hangup")  # A does not carry it
            assert r.status_code == 202
            detail = await wait_status(api_a, call_id, {"completed"}, timeout=30)
            assert detail["end_reason"] == "api_hangup"
            assert f"call {call_id}" in b.log.read_text()  # B carried it


async def test_sigterm_drains_the_active_call_while_the_other_process_takes_new_ones(
    fleet,
) -> None:
    a, b, data = fleet
    async with client(a, data) as api_a, client(b, data) as api_b:
        call_id = await dispatch(api_a, ["Hi, can I book a cleaning?", "Thanks, bye."])
        await wait_status(api_a, call_id, {"in_progress"}, timeout=60)
        assert (await api_a.get("/readyz")).status_code == 200
        a.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):  # unready at once
            while (await api_a.get("/readyz")).status_code != 503:
                await asyncio.sleep(0.05)
        body = (await api_a.get("/readyz")).json()
        assert body["ready"] is False and body["checks"]["draining"] == "yes"
        # B keeps taking calls meanwhile
        other = await dispatch(api_b, ["Hello, just a quick question, bye."])
        # A's call runs to its natural end, then A exits cleanly
        detail = await wait_status(api_b, call_id, {"completed", "failed"}, timeout=120)
        assert detail["status"] == "completed"
        assert detail["end_reason"] != "server_draining", detail["end_reason"]
        assert len(detail["transcript"]) >= 3
        exit_code = await asyncio.to_thread(a.proc.wait, 60)
        assert exit_code == 0
        assert (await wait_status(api_b, other, {"completed"}, timeout=120))["status"] == (
            "completed"
        )
