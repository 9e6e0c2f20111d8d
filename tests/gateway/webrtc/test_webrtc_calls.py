"""Browser-style calls through POST /api/v1/sessions + POST /webrtc/offer, with an
aiortc peer in place of the browser (the real browser is in test_browser_call.py)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.gateway.webrtc.conftest import QUICK_WELCOME
from tests.gateway.webrtc.peer import TestPeer, speak

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def wait_final(api, call_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        call = (await api.get(f"/api/v1/calls/{call_id}")).json()
        if call["status"] in ("completed", "failed", "cancelled"):
            return call
        if time.monotonic() > deadline:
            raise AssertionError(f"call not final: {call}")
        await asyncio.sleep(0.2)


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.models
async def test_call_over_webrtc_answers_the_caller(realtime, api, engine):
    question = await speak(engine, "What time do you open on Sunday?")
    # The caller speaks once the greeting (about 4 s) is over, as people do.
    peer = TestPeer(question, delay_s=5.0, data_channel=True)
    token = (await api.post("/api/v1/sessions", json={"agent_id": realtime.agent_id})).json()
    assert token["ice_servers"] == []  # none configured: nothing outside is contacted
    t0 = time.monotonic()
    r = await api.post(
        "/webrtc/offer", json={"sdp": await peer.offer(), "type": "offer", "token": token["token"]}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["type"] == "answer"
    # Only loopback host candidates with the switch on.
    candidates = [x for x in answer["sdp"].splitlines() if x.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c for c in candidates), candidates
    await peer.accept(answer["sdp"])
    await peer.wait_connected()
    connect_s = time.monotonic() - t0
    call_id = answer["call_id"]
    try:
        await wait_until(lambda: peer.first_voiced_at is not None, 15, "the greeting")
        greeting_ms = (peer.first_voiced_at - t0) * 1000
        agent_lines = lambda: [  # noqa: E731
            m for m in peer.messages if m.get("type") == "transcript" and m["role"] == "agent"
        ]
        await wait_until(lambda: len(agent_lines()) >= 2, 30, "the agent's reply")
        spoke_until = peer.mic.finished_at
        assert spoke_until is not None
        reply_heard = [t for t, _ in peer.heard_at if t > spoke_until]
        response_ms = (reply_heard[0] - spoke_until) * 1000 if reply_heard else -1
        print(
            f"\nWebRTC (aiortc client): connect {connect_s * 1000:.0f} ms, greeting audio "
            f"{greeting_ms:.0f} ms after the offer, caller speech end -> reply audio "
            f"{response_ms:.0f} ms"
        )
        peer.channel.send('{"type": "hangup"}')
        call = await wait_final(api, call_id)
    finally:
        await peer.close()
    kinds = {m["type"] for m in peer.messages}
    assert {"call_started", "state", "transcript"} <= kinds, kinds
    states = [m["state"] for m in peer.messages if m["type"] == "state"]
    assert "speaking" in states and "thinking" in states, states
    assert call["status"] == "completed", call
    assert call["end_reason"] == "caller_hangup"
    said = " ".join(e["text"].lower() for e in call["transcript"] if e["speaker"] == "caller")
    assert "sunday" in said or "open" in said, call["transcript"]
    agent_said = [e["text"] for e in call["transcript"] if e["speaker"] == "agent"]
    assert agent_said[0] == QUICK_WELCOME and len(agent_said) >= 2, call["transcript"]
    assert call["latency"], call
    rec = await api.get(f"/api/v1/calls/{call_id}/recording")
    assert rec.status_code == 200 and len(rec.content) > 16000
    assert call_id not in realtime.app.state.webrtc.active


async def test_peer_that_never_connects_fails_the_call(realtime, api):
    peer = TestPeer()
    token = (await api.post("/api/v1/sessions", json={"agent_id": realtime.agent_id})).json()
    gw = realtime.app.state.webrtc
    old = gw.connect_timeout_s
    gw.connect_timeout_s = 1.0
    try:
        r = await api.post(
            "/webrtc/offer",
            json={"sdp": await peer.offer(), "type": "offer", "token": token["token"]},
        )
        assert r.status_code == 200
        await peer.close()  # never applies the answer
        call = await wait_final(api, r.json()["call_id"])
    finally:
        gw.connect_timeout_s = old
    assert call["status"] == "failed"
    assert call["end_reason"].startswith("timeout: peer did not connect")


async def test_server_shutdown_closes_peers_and_finalizes_calls(engine, tmp_path):
    from api.app import create_app
    from api.server import BackgroundServer
    from api.settings import ServerSettings

    settings = ServerSettings(
        **{
            "engine": engine.settings,
            "data_dir": str(tmp_path),
            "database_url": None,
            "heartbeat_interval_s": 3600,
            "webrtc_loopback_candidates": True,
        }
    )
    app = create_app(settings, engine)
    server = BackgroundServer(app)
    await server.start()
    key, agent_id = app.state.bootstrap.api_key, app.state.bootstrap.agent_id
    peer = TestPeer()
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            token = (await client.post("/api/v1/sessions", json={"agent_id": agent_id})).json()
            r = await client.post(
                "/webrtc/offer",
                json={"sdp": await peer.offer(), "type": "offer", "token": token["token"]},
            )
            await peer.accept(r.json()["sdp"])
            await peer.wait_connected()
            call_id = r.json()["call_id"]
            beat = (await client.get("/api/status-page/heartbeat/all")).status_code
            assert beat == 200
            assert call_id in app.state.webrtc.active
        await server.stop()
        record = await app.state.voxline.store.get(call_id)
        await wait_until(lambda: peer.pc.connectionState in ("closed", "failed"), 40, "close")
    finally:
        await peer.close()
        if server._task is not None:
            await server.stop()
    assert record.status.value == "completed" and record.end_reason == "server_shutdown"
    assert not app.state.webrtc.active
