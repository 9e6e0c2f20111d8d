"""Issue 14, item 6: the organization's cap on calls in flight holds on every channel.

Before, only dispatches and campaigns counted: a tenant at its cap still took any
number of inbound phone calls and browser calls. Now an inbound Twilio call is
rejected as busy and a browser offer gets 429, and neither leaves a call behind.
"""

from __future__ import annotations

import pytest

from api.auth import create_key, create_organization
from gateway.twilio.signature import twilio_signature
from tests.api.conftest import TWILIO_AUTH_TOKEN
from tests.gateway.webrtc.peer import TestPeer

AGENT = {"name": "Capped clinic", "prompt": {"identity": "You are a receptionist."}}
RINGING = {"simulation": {"outcome": "busy", "ring_s": 30}}


@pytest.fixture
def cap_of_two(running):
    gw = running.app.state.voxline.phone
    saved = gw.admission.cap
    gw.admission.cap = 2  # the same object guards every transport
    yield
    gw.admission.cap = saved


async def _key_of_a_new_org(running) -> str:
    async with running.app.state.db_sessions() as db:
        org = await create_organization(db, "Capped org")
        _, key = await create_key(db, org.id, "k", "admin")
        await db.commit()
    return key


async def _at_its_cap(api, number: str):
    agent = (await api.post("/api/v1/agents", json=AGENT)).json()
    r = await api.post("/api/v1/phone-numbers", json={"number": number, "agent_id": agent["id"]})
    assert r.status_code == 201, r.text
    ringing = []
    for i in range(2):
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={"agent_id": agent["id"], "to_number": f"+1555017200{i}", "call_context": RINGING},
        )
        assert r.status_code == 201, r.text
        ringing.append(r.json()["call_id"])
    return agent, ringing


async def _calls(api) -> list[dict]:
    return (await api.get("/api/v1/calls?limit=200")).json()["data"]


async def test_an_inbound_phone_call_over_the_cap_is_rejected_busy(running, cap_of_two) -> None:
    number = "+15550172100"
    async with running.client(await _key_of_a_new_org(running)) as api:
        _, ringing = await _at_its_cap(api, number)
        before = len(await _calls(api))
        form = {"CallSid": "CA" + "7" * 32, "From": "+15550009999", "To": number}
        url = f"{running.base_url}/twilio/voice"
        signature = twilio_signature(TWILIO_AUTH_TOKEN, url, form.items())
        r = await api.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
        assert r.status_code == 200
        assert '<Reject reason="busy"' in r.text and "<Stream" not in r.text
        assert len(await _calls(api)) == before
        # A slot frees: the next inbound call is answered with a stream.
        await api.post(f"/api/v1/calls/{ringing[0]}/hangup")
        form["CallSid"] = "CA" + "8" * 32
        signature = twilio_signature(TWILIO_AUTH_TOKEN, url, form.items())
        r = await api.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
        assert "<Stream" in r.text, r.text
        await api.post(f"/api/v1/calls/{ringing[1]}/hangup")


async def test_a_browser_call_over_the_cap_gets_429(running, cap_of_two) -> None:
    peer = TestPeer()
    try:
        async with running.client(await _key_of_a_new_org(running)) as api:
            agent, ringing = await _at_its_cap(api, "+15550172101")
            before = len(await _calls(api))
            token = (await api.post("/api/v1/sessions", json={"agent_id": agent["id"]})).json()
            body = {"sdp": await peer.offer(), "type": "offer", "token": token["token"]}
            r = await api.post("/webrtc/offer", json=body)
            assert r.status_code == 429, r.text
            assert "concurrent call limit" in r.json()["detail"]
            assert int(r.headers["Retry-After"]) >= 1
            assert len(await _calls(api)) == before
            for call_id in ringing:
                await api.post(f"/api/v1/calls/{call_id}/hangup")
    finally:
        await peer.close()
