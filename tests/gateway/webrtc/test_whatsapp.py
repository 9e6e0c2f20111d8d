"""WhatsApp-style calling end to end: an aiortc peer plays WhatsApp's side (it makes
the offer), webhooks are signed with the app secret, and a local Graph API stub
checks the pre_accept / accept / terminate requests and hands the answer back."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from gateway.whatsapp.webhook import sign
from tests.gateway.webrtc.conftest import APP_SECRET, WHATSAPP_NUMBER
from tests.gateway.webrtc.graph_stub import PHONE_NUMBER_ID
from tests.gateway.webrtc.peer import TestPeer, transcribe
from tests.gateway.webrtc.test_webrtc_calls import wait_final, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

CALLER = "15550123456"


def calls_webhook(call: dict) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "366634483210360",
                "changes": [
                    {
                        "field": "calls",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "phone_number_id": PHONE_NUMBER_ID,
                                "display_phone_number": WHATSAPP_NUMBER.lstrip("+"),
                            },
                            "calls": [call],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def connect_event(wacid: str, sdp: str) -> bytes:
    return calls_webhook(
        {
            "id": wacid,
            "from": CALLER,
            "to": WHATSAPP_NUMBER,
            "event": "connect",
            "timestamp": str(int(time.time())),
            "session": {"sdp_type": "offer", "sdp": sdp},
        }
    )


def terminate_event(wacid: str) -> bytes:
    return calls_webhook(
        {"id": wacid, "from": CALLER, "to": WHATSAPP_NUMBER, "event": "terminate",
         "status": "COMPLETED", "duration": 3, "timestamp": str(int(time.time()))}
    )


async def post_webhook(base_url: str, body: bytes, secret: str = APP_SECRET) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url) as client:
        return await client.post(
            "/whatsapp/webhook",
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
        )


@pytest.mark.models
async def test_whatsapp_call_answered_greeted_and_terminated(realtime, api, engine):
    graph = realtime.graph
    wacid = "wacid.HBgLMTU1NTAxMjM0NTYVAgARGBI"
    peer = TestPeer()
    try:
        body = connect_event(wacid, await peer.offer())
        t0 = time.monotonic()
        r = await post_webhook(realtime.base_url, body)
        assert r.status_code == 200, r.text
        # A retried delivery of the same webhook must not answer the call twice.
        assert (await post_webhook(realtime.base_url, body)).status_code == 200
        pre = await graph.wait_for(wacid, "pre_accept", 10)
        accept = await graph.wait_for(wacid, "accept", 10)
        assert graph.actions(wacid) == ["pre_accept", "accept"]
        assert pre["session"]["sdp"] == accept["session"]["sdp"]
        await peer.accept(accept["session"]["sdp"])
        await peer.wait_connected()
        connect_ms = (time.monotonic() - t0) * 1000
        await wait_until(lambda: peer.first_voiced_at is not None, 15, "the greeting")
        greeting_ms = (peer.first_voiced_at - t0) * 1000
        await wait_until(lambda: time.monotonic() - peer.first_voiced_at > 3.5, 10, "audio")
        heard = await transcribe(engine, peer.audio())
        print(f"\nWhatsApp: connected {connect_ms:.0f} ms after the webhook, greeting audio "
              f"at {greeting_ms:.0f} ms; heard: {heard!r}")
        assert "garden" in heard.lower(), heard
        call_id = realtime.app.state.whatsapp.calls[wacid]
        # We hang up (the control plane): WhatsApp is told with a terminate.
        r = await api.post(f"/api/v1/calls/{call_id}/hangup")
        assert r.status_code in (200, 202), r.text
        await graph.wait_for(wacid, "terminate", 10)
        call = await wait_final(api, call_id)
    finally:
        await peer.close()
    assert graph.errors == []
    assert graph.actions(wacid) == ["pre_accept", "accept", "terminate"]
    assert call["status"] == "completed"
    assert call["from_number"] == CALLER and call["to_number"] == WHATSAPP_NUMBER
    assert call["transcript"][0]["speaker"] == "agent"


async def test_whatsapp_terminate_webhook_ends_the_call(realtime, api):
    graph = realtime.graph
    wacid = "wacid.terminated-by-user"
    peer = TestPeer()
    try:
        r = await post_webhook(realtime.base_url, connect_event(wacid, await peer.offer()))
        assert r.status_code == 200
        accept = await graph.wait_for(wacid, "accept", 10)
        await peer.accept(accept["session"]["sdp"])
        await peer.wait_connected()
        call_id = realtime.app.state.whatsapp.calls[wacid]
        r = await post_webhook(realtime.base_url, terminate_event(wacid))
        assert r.status_code == 200 and r.json() == {"received": 1}
        call = await wait_final(api, call_id)
    finally:
        await peer.close()
    assert call["status"] == "completed"
    assert "whatsapp terminate" in call["end_reason"]
    # WhatsApp ended it: no terminate is echoed back.
    assert graph.actions(wacid) == ["pre_accept", "accept"]
