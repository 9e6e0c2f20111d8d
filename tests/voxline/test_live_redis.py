"""Live events across API processes through Redis pub/sub (127.0.0.1:6379).

Two servers (two apps, two hubs: as two processes would be) share one database
and one Redis; a watcher on B sees the calls placed on A. Each test run uses its
own channel prefix, so nothing of other runs is seen; pub/sub stores no keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import httpx
import pytest
import websockets

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from voice_core.events import TranscriptFinal

REDIS_URL = os.environ.get("VOXLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _redis_or_skip():
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}): Redis live-event tests skipped")
    return client


@pytest.fixture
async def two_servers(engine, tmp_path):
    raw = await _redis_or_skip()
    prefix = f"voxline-test-{uuid.uuid4().hex[:8]}"
    base = {
        "engine": engine.settings,
        "data_dir": str(tmp_path),
        "database_url": f"sqlite:///{tmp_path / 'voxline.db'}",
        "heartbeat_interval_s": 3600,
        "redis_url": REDIS_URL,
        "live_channel_prefix": prefix,
    }
    servers = []
    for _ in range(2):
        server = BackgroundServer(create_app(ServerSettings(**base), engine))
        await server.start()
        servers.append(server)
    yield servers, raw, prefix
    for server in reversed(servers):
        await server.stop()
    await raw.aclose()


async def test_a_watcher_on_one_process_sees_calls_of_another(two_servers) -> None:
    (a, b), raw, prefix = two_servers
    key = a.app.state.bootstrap.api_key
    agent_id = a.app.state.bootstrap.agent_id
    org_id = a.app.state.bootstrap.org_id
    spy = raw.pubsub()
    await spy.subscribe(f"{prefix}:org:{org_id}")
    url = b.base_url.replace("http", "ws", 1) + "/api/v1/live"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        hello = json.loads(await ws.recv())
        assert hello["transport"] == "redis"
        hub_b = b.app.state.live
        for _ in range(100):  # B's pattern subscription is up
            if hub_b.redis_connected:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(
            base_url=a.base_url, headers={"Authorization": f"Bearer {key}"}
        ) as api:
            r = await api.post(
                "/api/v1/calls/dispatch",
                json={
                    "agent_id": agent_id,
                    "to_number": "+15550179001",
                    "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.1}},
                },
            )
            call_id = r.json()["call_id"]
        # An engine event of a call running on A (what A's gateway observer hands over).
        a.app.state.live.on_call_event(call_id, TranscriptFinal("hello from A", turn=1))
        got = []
        while not any(e["type"] == "call.ended" for e in got):
            event = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if event.get("call_id") == call_id:
                got.append(event)
        kinds = [e["type"] for e in got]
        assert kinds[0] == "call.started"
        assert ("transcript", "hello from A") in [(e["type"], e.get("text")) for e in got]
        assert [e["status"] for e in got if e["type"] == "call.status"][-1] == "busy"
        assert b.app.state.voxline.phone.active == {}  # B never carried the call
    # The events really crossed Redis, on the org's channel.
    seen = []
    for _ in range(200):  # get_message answers None for the subscribe confirmation too
        message = await spy.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            seen.append(json.loads(message["data"])["type"])
        elif "call.ended" in seen:
            break
    assert "call.started" in seen and "transcript" in seen
    await spy.aclose()
