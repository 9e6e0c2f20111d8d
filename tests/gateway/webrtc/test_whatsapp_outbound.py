"""Business-initiated WhatsApp calls end to end.

``POST /api/v1/calls/dispatch`` with ``channel: "whatsapp"`` makes voxline POST a
``connect`` with its SDP offer to the local Graph API stub (which checks the
bearer token and the body shape and hands out a call id). An aiortc peer plays
the WhatsApp user: it answers that offer, and the test delivers the answer the
way WhatsApp does, as a signed ``calls`` webhook; status webhooks (``statuses[]``,
type ``call``) move the record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from aiortc import RTCSessionDescription

from gateway.webrtc.sdp import check_offer
from gateway.whatsapp.webhook import CallStatusUpdate, parse_calls
from tests.gateway.webrtc.conftest import WHATSAPP_NUMBER
from tests.gateway.webrtc.graph_stub import PHONE_NUMBER_ID
from tests.gateway.webrtc.peer import TestPeer, transcribe
from tests.gateway.webrtc.test_webrtc_calls import wait_until
from tests.gateway.webrtc.test_whatsapp import calls_webhook, post_webhook

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS = WHATSAPP_NUMBER.lstrip("+")


class WhatsAppUser(TestPeer):
    """The callee's WhatsApp client: answers the business's offer."""

    __test__ = False

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp


def answer_event(wacid: str, callee: str, sdp: str) -> bytes:
    return calls_webhook(
        {
            "id": wacid,
            "from": BUSINESS,
            "to": callee,
            "event": "connect",
            "direction": "BUSINESS_INITIATED",
            "timestamp": str(int(time.time())),
            "session": {"sdp_type": "answer", "sdp": sdp},
        }
    )


def status_event(wacid: str, callee: str, status: str) -> bytes:
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
                                "display_phone_number": BUSINESS,
                            },
                            "statuses": [
                                {
                                    "id": wacid,
                                    "timestamp": str(int(time.time())),
                                    "type": "call",
                                    "status": status,
                                    "recipient_id": callee,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def terminate_event(wacid: str, callee: str, status: str) -> bytes:
    return calls_webhook(
        {"id": wacid, "from": BUSINESS, "to": callee, "event": "terminate",
         "status": status, "timestamp": str(int(time.time()))}
    )


async def dispatch(api, agent_id: str, to: str) -> str:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={"agent_id": agent_id, "to_number": to, "channel": "whatsapp",
              "call_context": {"first_name": "Ana"}},
    )
    assert r.status_code == 201, r.text
    return r.json()["call_id"]


async def wait_status(api, call_id: str, statuses: set[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        call = (await api.get(f"/api/v1/calls/{call_id}")).json()
        if call["status"] in statuses:
            return call
        if time.monotonic() > deadline:
            raise AssertionError(f"call never reached {statuses}: {call}")
        await asyncio.sleep(0.1)


async def webhook(realtime, body: bytes) -> None:
    r = await post_webhook(realtime.base_url, body)
    assert r.status_code == 200, r.text


async def test_status_webhooks_parse():
    events = parse_calls(status_event("wacid.1", "15550123000", "RINGING"))
    assert events == [CallStatusUpdate("wacid.1", PHONE_NUMBER_ID, "RINGING", "15550123000")]


@pytest.mark.models
async def test_business_initiated_call_connects_greets_and_hangs_up(realtime, api, engine):
    graph = realtime.graph
    callee = "15550123901"
    user = WhatsAppUser()
    try:
        call_id = await dispatch(api, realtime.agent_id, "+" + callee)
        wacid, connect = await graph.wait_placed(callee, 15)
        # The stub refuses a wrong bearer token, path or shape (and records why).
        assert graph.errors == []
        assert set(connect) == {"messaging_product", "to", "action", "session"}
        offer = connect["session"]["sdp"]
        check_offer(offer)  # audio, Opus, DTLS fingerprint, ICE credentials
        codecs = [line for line in offer.splitlines() if line.startswith("a=rtpmap:")]
        assert codecs and all("opus/48000" in line.lower() for line in codecs), codecs
        record = await realtime.app.state.voxline.store.get(call_id)
        assert record.carrier == "whatsapp" and record.carrier_call_id == wacid

        await webhook(realtime, status_event(wacid, callee, "RINGING"))
        await wait_status(api, call_id, {"ringing"})

        answer = await user.answer(offer)
        await webhook(realtime, answer_event(wacid, callee, answer))
        await user.wait_connected()
        await wait_status(api, call_id, {"in_progress"})
        # ACCEPTED comes for auditing, often after media is up: no change.
        await webhook(realtime, status_event(wacid, callee, "ACCEPTED"))

        await wait_until(lambda: user.first_voiced_at is not None, 20, "the greeting")
        await wait_until(lambda: time.monotonic() - user.first_voiced_at > 3.5, 10, "audio")
        heard = await transcribe(engine, user.audio())
        print(f"\nWhatsApp outbound: heard {heard!r}")
        assert "garden" in heard.lower(), heard

        r = await api.post(f"/api/v1/calls/{call_id}/hangup")
        assert r.status_code == 202, r.text
        await graph.wait_for(wacid, "terminate", 10)
        call = await wait_status(api, call_id, {"completed", "failed", "cancelled"})
    finally:
        await user.close()
    assert graph.errors == []
    assert graph.actions(wacid) == ["connect", "terminate"]
    assert call["status"] == "completed", call
    assert call["direction"] == "outbound" and call["to_number"] == "+" + callee
    history = [h[0] if isinstance(h, list) else h["status"] for h in call["status_history"]]
    assert history[:4] == ["queued", "ringing", "in_progress", "completed"], history
    assert call["transcript"][0]["speaker"] == "agent"


async def test_rejected_call_ends_busy(realtime, api):
    graph = realtime.graph
    callee = "15550123902"
    call_id = await dispatch(api, realtime.agent_id, "+" + callee)
    wacid, _ = await graph.wait_placed(callee, 15)
    await webhook(realtime, status_event(wacid, callee, "RINGING"))
    await wait_status(api, call_id, {"ringing"})
    await webhook(realtime, status_event(wacid, callee, "REJECTED"))
    # WhatsApp follows a rejection with a terminate webhook: nothing more to do then.
    await webhook(realtime, terminate_event(wacid, callee, "REJECTED"))
    call = await wait_status(api, call_id, {"busy", "failed", "no_answer", "completed"})
    # Declined by the user = busy (as a declined phone call); failed is for calls
    # that could not be placed. WhatsApp already ended it: no terminate from us.
    assert call["status"] == "busy", call
    assert "declined" in call["end_reason"]
    await asyncio.sleep(0.3)
    assert graph.actions(wacid) == ["connect"]
    assert call_id not in realtime.app.state.webrtc.active


async def test_unanswered_call_times_out_as_no_answer(realtime, api, caplog):
    graph = realtime.graph
    carrier = realtime.app.state.whatsapp_carrier
    callee = "15550123903"
    saved = carrier.ring_timeout_s
    carrier.ring_timeout_s = 1.0
    try:
        call_id = await dispatch(api, realtime.agent_id, "+" + callee)
        wacid, connect = await graph.wait_placed(callee, 15)
        await graph.wait_for(wacid, "terminate", 15)
        call = await wait_status(api, call_id, {"no_answer", "failed", "busy", "completed"})
    finally:
        carrier.ring_timeout_s = saved
    assert call["status"] == "no_answer", call
    assert "not answered within 1 s" in call["end_reason"]
    assert graph.actions(wacid) == ["connect", "terminate"]
    # A late answer for the ended call is a call id we no longer know: 200, logged, ignored.
    user = WhatsAppUser()
    try:
        answer = await user.answer(connect["session"]["sdp"])
        with caplog.at_level(logging.WARNING, logger="gateway.whatsapp.carrier"):
            await webhook(realtime, answer_event(wacid, callee, answer))
            await wait_until(
                lambda: any(wacid in r.getMessage() for r in caplog.records), 5, "the log line"
            )
    finally:
        await user.close()
    assert (await api.get(f"/api/v1/calls/{call_id}")).json()["status"] == "no_answer"


async def test_answer_for_unknown_call_id_is_ignored_with_200(realtime, caplog):
    wacid = "wacid.never-placed-by-us"
    user = WhatsAppUser()
    try:
        offer_peer = TestPeer()
        try:
            answer = await user.answer(await offer_peer.offer())
        finally:
            await offer_peer.close()
        with caplog.at_level(logging.WARNING, logger="gateway.whatsapp.carrier"):
            r = await post_webhook(realtime.base_url, answer_event(wacid, "15550123904", answer))
            assert r.status_code == 200 and r.json() == {"received": 1}
            r = await post_webhook(
                realtime.base_url, status_event(wacid, "15550123904", "RINGING")
            )
            assert r.status_code == 200
            await wait_until(
                lambda: sum(wacid in r.getMessage() for r in caplog.records) >= 2, 5, "logs"
            )
    finally:
        await user.close()
    assert realtime.graph.actions(wacid) == []


async def test_graph_refusal_fails_the_dispatch(realtime, api):
    graph = realtime.graph
    graph.connect_error = (
        400,
        {"error": {"message": "No permission to call this user", "code": 138006}},
    )
    try:
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={"agent_id": realtime.agent_id, "to_number": "+15550123905",
                  "channel": "whatsapp"},
        )
    finally:
        graph.connect_error = None
    assert r.status_code == 502, r.text
    assert "138006" in r.json()["detail"]
    calls = (await api.get("/api/v1/calls?status=failed&limit=200")).json()["data"]
    failed = [c for c in calls if c["to_number"] == "+15550123905"]
    assert len(failed) == 1 and "138006" in failed[0]["end_reason"]
    assert not realtime.app.state.webrtc._pending


async def test_dispatch_channel_must_be_known(realtime, api):
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={"agent_id": realtime.agent_id, "to_number": "+15550123906", "channel": "fax"},
    )
    assert r.status_code == 422
    assert "channel" in json.dumps(r.json()["detail"])


async def test_hangup_while_ringing_terminates_and_cancels(realtime, api):
    graph = realtime.graph
    callee = "15550123907"
    call_id = await dispatch(api, realtime.agent_id, "+" + callee)
    wacid, _ = await graph.wait_placed(callee, 15)
    await webhook(realtime, status_event(wacid, callee, "RINGING"))
    await wait_status(api, call_id, {"ringing"})
    r = await api.post(f"/api/v1/calls/{call_id}/hangup")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "cancelled"
    assert graph.actions(wacid) == ["connect", "terminate"]
    assert not realtime.app.state.whatsapp_carrier.ringing.get(wacid)
