"""Bad input gets a clear 4xx and starts nothing: tokens, SDP, webhook signatures."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.whatsapp.webhook import sign
from tests.gateway.webrtc.conftest import APP_SECRET, VERIFY_TOKEN
from tests.gateway.webrtc.peer import TestPeer
from tests.gateway.webrtc.test_whatsapp import connect_event, post_webhook

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def offer_sdp():
    peer = TestPeer()
    yield await peer.offer()
    await peer.close()


async def _token(api, agent_id: str) -> str:
    r = await api.post("/api/v1/sessions", json={"agent_id": agent_id})
    assert r.status_code == 201, r.text
    return r.json()["token"]


async def _call_count(api) -> int:
    return len((await api.get("/api/v1/calls?limit=200")).json()["data"])


async def test_sessions_need_a_key_and_an_agent_of_the_org(realtime, api):
    async with httpx.AsyncClient(base_url=realtime.base_url) as anon:
        r = await anon.post("/api/v1/sessions", json={"agent_id": realtime.agent_id})
        assert r.status_code == 401
    r = await api.post("/api/v1/sessions", json={"agent_id": "agt_not_ours"})
    assert r.status_code == 404 and "not found" in r.json()["detail"]
    r = await api.post("/api/v1/sessions", json={})
    assert r.status_code == 422


async def _expire(realtime, token: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from api.realtime.models import SessionToken
    from api.realtime.session_tokens import _hash

    async with realtime.app.state.db_sessions() as db:
        await db.execute(
            update(SessionToken)
            .where(SessionToken.token_hash == _hash(token))
            .values(expires_at=datetime.fromtimestamp(0, UTC))
        )
        await db.commit()


async def test_bad_tokens_are_refused_and_start_nothing(realtime, api, offer_sdp):
    before = await _call_count(api)
    gw = realtime.app.state.webrtc
    for token in ("", "nonsense", "vxs_forged-token"):
        body = {"sdp": offer_sdp, "type": "offer", "token": token}
        r = await api.post("/webrtc/offer", json=body)
        assert r.status_code == 401, r.text
        assert r.json()["detail"].startswith("token:")
    # Expired.
    token = await _token(api, realtime.agent_id)
    await _expire(realtime, token)
    r = await api.post("/webrtc/offer", json={"sdp": offer_sdp, "type": "offer", "token": token})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert await _call_count(api) == before and not gw.active


async def test_replayed_token_is_refused(realtime, api):
    token = await _token(api, realtime.agent_id)
    first, second = TestPeer(), TestPeer()
    try:
        r = await api.post(
            "/webrtc/offer", json={"sdp": await first.offer(), "type": "offer", "token": token}
        )
        assert r.status_code == 200
        call_id = r.json()["call_id"]
        r = await api.post(
            "/webrtc/offer", json={"sdp": await second.offer(), "type": "offer", "token": token}
        )
        assert r.status_code == 401 and "already used" in r.json()["detail"]
    finally:
        await first.close()
        await second.close()
    await realtime.app.state.webrtc.hangup(call_id, "test_over")


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda s: "hello", "v=0"),
        (lambda s: "", "non-empty"),
        (lambda s: s.replace("m=audio", "m=video"), "no audio"),
        (lambda s: s.replace("opus/48000", "PCMU/8000"), "Opus"),
        (
            lambda s: "\n".join(x for x in s.splitlines() if not x.startswith("a=fingerprint")),
            "fingerprint",
        ),
        (lambda s: s + "\r\nthis is not sdp", "malformed"),
    ],
)
async def test_bad_sdp_is_refused_and_the_token_survives(realtime, api, offer_sdp, mangle, why):
    before = await _call_count(api)
    token = await _token(api, realtime.agent_id)
    r = await api.post(
        "/webrtc/offer", json={"sdp": mangle(offer_sdp), "type": "offer", "token": token}
    )
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("sdp:") and why in r.json()["detail"], r.json()
    r = await api.post("/webrtc/offer", json={"sdp": offer_sdp, "type": "answer", "token": token})
    assert r.status_code == 400 and "offer" in r.json()["detail"]
    assert await _call_count(api) == before
    assert await realtime.app.state.session_tokens.unspent(token)  # not spent by a broken offer


async def test_data_only_offer_is_refused(realtime, api):
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        token = await _token(api, realtime.agent_id)
        r = await api.post(
            "/webrtc/offer",
            json={"sdp": pc.localDescription.sdp, "type": "offer", "token": token},
        )
    finally:
        await pc.close()
    assert r.status_code == 400 and "no audio" in r.json()["detail"]


async def test_webhook_signatures(realtime, offer_sdp):
    body = connect_event("wacid.badsig", offer_sdp)
    async with httpx.AsyncClient(base_url=realtime.base_url) as client:
        r = await client.post("/whatsapp/webhook", content=body)
        assert r.status_code == 401 and "X-Hub-Signature-256" in r.json()["detail"]
        r = await client.post(
            "/whatsapp/webhook", content=body, headers={"X-Hub-Signature-256": "md5=abc"}
        )
        assert r.status_code == 401
    r = await post_webhook(realtime.base_url, body, secret="wrong-secret")
    assert r.status_code == 403
    # Signed, but tampered with after signing.
    async with httpx.AsyncClient(base_url=realtime.base_url) as client:
        r = await client.post(
            "/whatsapp/webhook",
            content=body.replace(b"badsig", b"badsix"),
            headers={"X-Hub-Signature-256": sign(body, APP_SECRET)},
        )
        assert r.status_code == 403
    # Signed but malformed.
    bad = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {"field": "calls", "value": {"calls": [{"id": "x", "event": "connect"}]}}
                    ]
                }
            ],
        }
    ).encode()
    r = await post_webhook(realtime.base_url, bad)
    assert r.status_code == 400 and "session" in r.json()["detail"]
    assert realtime.graph.actions("wacid.badsig") == [] and realtime.graph.actions("x") == []
    assert "wacid.badsig" not in realtime.app.state.whatsapp.calls


async def test_webhook_verification_challenge(realtime):
    async with httpx.AsyncClient(base_url=realtime.base_url) as client:
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        }
        r = await client.get("/whatsapp/webhook", params=params)
        assert r.status_code == 200 and r.text == "1158201444"
        r = await client.get("/whatsapp/webhook", params={**params, "hub.verify_token": "no"})
        assert r.status_code == 403
        r = await client.get("/whatsapp/webhook", params={**params, "hub.mode": "unsubscribe"})
        assert r.status_code == 400


async def test_widget_and_test_call_page_are_served(realtime):
    async with httpx.AsyncClient(base_url=realtime.base_url) as client:
        r = await client.get("/widget.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
        assert "VoxlineCall" in r.text and "stun:" not in r.text
        r = await client.get(f"/test-call/{realtime.agent_id}")
        assert r.status_code == 200 and realtime.agent_id in r.text
        assert realtime.api_key not in r.text  # the key is typed in the page, never served
        assert (await client.get("/test-call/<script>")).status_code == 404
        r = await client.options("/webrtc/offer")
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
