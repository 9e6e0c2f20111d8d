"""The carrier's webhooks over real HTTP: voice (TwiML answer) and status callback."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import httpx

from gateway.agents import DEMO_AGENT_ID
from gateway.calls import CallRecord, CallStatus, Direction
from tests.gateway.conftest import QUICK_AGENT_ID, LiveServer, twilio_headers


async def post(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    """A webhook as Twilio sends it: form-encoded and signed."""
    return await http.post(path, data=data, headers=twilio_headers(path, data))


def voice_form(call_sid: str, to: str = "+15550001111") -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + "1" * 32,
        "From": "+15557654321",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


async def test_inbound_call_is_answered_with_a_stream_to_the_numbers_agent(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await post(http, "/twilio/voice", voice_form("CA-inbound-1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    [connect] = list(root)
    assert connect.tag == "Connect"
    [stream] = list(connect)
    assert stream.tag == "Stream"
    # Built from Settings.public_url: carriers need wss.
    assert stream.get("url") == "wss://voice.example.test/media-stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["agent_id"] == QUICK_AGENT_ID
    claims = live.vox.phone.tokens.verify(params["token"])
    assert (claims.call_id, claims.agent_id) == (params["call_id"], QUICK_AGENT_ID)
    record = await live.vox.store.get(params["call_id"] or "")
    assert record is not None
    assert record.direction == Direction.INBOUND and record.status == CallStatus.RINGING
    assert (record.from_number, record.to_number) == ("+15557654321", "+15550001111")
    assert record.carrier_call_id == "CA-inbound-1"


async def test_unmapped_number_reaches_the_default_agent(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await post(http, "/twilio/voice", voice_form("CA-2", to="+4420700000"))
    stream = ET.fromstring(response.text).find("Connect/Stream")
    assert stream is not None
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["agent_id"] == DEMO_AGENT_ID


async def test_bad_webhook_requests_get_4xx_naming_the_field(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        form = voice_form("CA-3")
        del form["To"]
        missing = await post(http, "/twilio/voice", form)
        as_json = await http.post("/twilio/voice", json=voice_form("CA-3"))
        bad_status = await post(
            http, "/twilio/status", {"CallSid": "CA-inbound-1", "CallStatus": "exploded"}
        )
        unknown_call = await post(
            http, "/twilio/status", {"CallSid": "CA-nope", "CallStatus": "ringing"}
        )
    assert missing.status_code == 400 and missing.json()["detail"]["field"] == "To"
    assert as_json.status_code == 415 and as_json.json()["detail"]["field"] == "content-type"
    assert bad_status.status_code == 400 and bad_status.json()["detail"]["field"] == "CallStatus"
    assert unknown_call.status_code == 404 and unknown_call.json()["detail"]["field"] == "CallSid"


async def test_status_callbacks_move_the_call_and_a_late_one_cannot_undo_the_end(
    live: LiveServer,
) -> None:
    store = live.vox.store
    await store.create(
        CallRecord(id="call_status_1", agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        seen = []
        for status in ("initiated", "ringing", "in-progress", "completed", "ringing"):
            response = await post(
                http,
                "/twilio/status?call_id=call_status_1",
                {"CallSid": "CA-out-1", "CallStatus": status, "CallDuration": "12"},
            )
            assert response.status_code == 200
            seen.append(response.json()["status"])
        # Later callbacks find the call by its CallSid alone.
        by_sid = await post(http, "/twilio/status", {"CallSid": "CA-out-1", "CallStatus": "busy"})
    assert seen == ["queued", "ringing", "in_progress", "completed", "completed"]
    assert by_sid.json() == {"call_id": "call_status_1", "status": "completed", "applied": False}
    record = await store.get("call_status_1")
    assert record is not None and record.carrier_call_id == "CA-out-1"
    assert record.answered_at is not None and record.ended_at is not None


async def test_outbound_call_twiml_uses_the_records_agent(live: LiveServer) -> None:
    await live.vox.store.create(
        CallRecord(id="call_out_2", agent_id=DEMO_AGENT_ID, direction=Direction.OUTBOUND)
    )
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await post(
            http, "/twilio/voice?call_id=call_out_2", voice_form("CA-out-2", to="+15559990000")
        )
        unknown = await post(http, "/twilio/voice?call_id=nope", voice_form("CA-x"))
    stream = ET.fromstring(response.text).find("Connect/Stream")
    assert stream is not None
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    token = params.pop("token")
    assert params == {"agent_id": DEMO_AGENT_ID, "call_id": "call_out_2"}
    claims = live.vox.phone.tokens.verify(token)
    assert (claims.call_id, claims.agent_id) == ("call_out_2", DEMO_AGENT_ID)
    assert unknown.status_code == 404 and unknown.json()["detail"]["field"] == "call_id"


async def test_health(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        body = (await http.get("/healthz")).json()
    assert body["status"] == "ok" and body["carrier"] == "simulated"
