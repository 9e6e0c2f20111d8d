"""Telnyx calls end to end: signed Call Control webhooks, the REST commands they cause
(against a local stub of Telnyx's API), and a caller speaking Telnyx's media-stream
dialect over a real WebSocket to the real server and the real models."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from gateway.calls import CallRecord, CallStatus, Direction
from gateway.simulated.callee import synthesize
from gateway.telnyx.media_stream import AUTH_TOKEN_FIELD
from tests.gateway.dialects import (
    PUBLIC_URL,
    QUICK_AGENT_ID,
    QUICK_NUMBER,
    TALKER_NUMBER,
    TALKER_WELCOME,
    TELNYX_CONNECTION_ID,
    DialectPeer,
    DialectServer,
    PeerDialect,
    dialect_server,  # noqa: F401  (the fixture)
    greeting_question_answer,
    raw_socket,
    speech_frames,
    telnyx_headers,
)
from voice_core.audio import mulaw
from voice_core.end_reasons import EndReason
from voice_core.events import DtmfReceived, SessionEvent

WEBHOOK = "/telnyx/call-control"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def event(event_type: str, **payload: Any) -> bytes:
    return json.dumps(
        {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": "2026-12-02T16:00:00.000000Z",
                "payload": {"connection_id": TELNYX_CONNECTION_ID, **payload},
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": PUBLIC_URL + WEBHOOK},
        }
    ).encode()


async def webhook(srv: DialectServer, body: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.post(WEBHOOK, content=body, headers=headers or telnyx_headers(body))


async def incoming(srv: DialectServer, control_id: str, to: str) -> dict[str, Any]:
    body = event(
        "call.initiated",
        call_control_id=control_id,
        call_leg_id=str(uuid.uuid4()),
        direction="incoming",
        state="parked",
        **{"from": "+13125550100", "to": to},
    )
    response = await webhook(srv, body)
    assert response.status_code == 200, response.text
    return response.json()


def telnyx_dialect(stream_id: str) -> PeerDialect:
    seq = itertools.count(2)
    chunks = itertools.count(1)

    def media(pcm: np.ndarray) -> str:
        n = next(chunks)
        return json.dumps(
            {
                "event": "media",
                "sequence_number": str(next(seq)),
                "media": {
                    "track": "inbound",
                    "chunk": str(n),
                    "timestamp": str(n * 20),
                    "payload": base64.b64encode(mulaw.encode(pcm)).decode(),
                },
                "stream_id": stream_id,
            }
        )

    def parse(text: str) -> tuple[str, Any]:
        msg = json.loads(text)
        if msg["event"] == "media":
            assert set(msg) == {"event", "media"} and set(msg["media"]) == {"payload"}
            return "media", mulaw.decode(base64.b64decode(msg["media"]["payload"]))
        if msg["event"] == "mark":
            return "mark", msg["mark"]["name"]
        return msg["event"], msg

    def mark_played(name: str) -> str:
        return json.dumps(
            {"event": "mark", "sequence_number": str(next(seq)), "stream_id": stream_id,
             "mark": {"name": name}}
        )  # fmt: skip

    def stop() -> str:
        return json.dumps({"event": "stop", "sequence_number": str(next(seq)),
                           "stop": {"call_control_id": "x"}, "stream_id": stream_id})  # fmt: skip

    return PeerDialect(8000, media, parse, mark_played, lambda: None, stop)


def opening(control_id: str, stream_id: str, token: str | None) -> list[str]:
    connected: dict[str, Any] = {"event": "connected", "version": "1.0.0"}
    if token is not None:
        connected[AUTH_TOKEN_FIELD] = token
    start = {
        "event": "start",
        "sequence_number": "1",
        "stream_id": stream_id,
        "start": {
            "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
            "call_control_id": control_id,
            "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
            "from": "+13125550100",
            "to": TALKER_NUMBER,
            "client_state": None,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        },
    }
    return [json.dumps(connected), json.dumps(start)]


def answer_of(srv: DialectServer, control_id: str, action: str = "answer") -> dict[str, Any]:
    [body] = srv.stub.of(f"/calls/{control_id}/actions/{action}")
    return body


@pytest.mark.models
async def test_inbound_call_greeting_turn_barge_in_and_hang_up(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    control_id = "v3:inbound-" + uuid.uuid4().hex
    answered = await incoming(srv, control_id, TALKER_NUMBER)
    assert answered["action"] == "answer"
    call_id = answered["call_id"]

    # The answer asks for a bidirectional RTP stream, explicitly (the default is one-way).
    answer = answer_of(srv, control_id)
    assert answer["stream_url"] == "wss://voice.example.test/telnyx/media-stream"
    assert answer["stream_track"] == "inbound_track"
    assert answer["stream_bidirectional_mode"] == "rtp"
    assert answer["stream_bidirectional_codec"] == "PCMU" == answer["stream_codec"]
    assert answer["stream_bidirectional_sampling_rate"] == 8000
    assert base64.b64decode(answer["client_state"]).decode() == call_id
    token = answer["stream_auth_token"]

    url = srv.local(answer["stream_url"])
    stream_id = str(uuid.uuid4())
    peer = DialectPeer(
        url, telnyx_dialect(stream_id), opening(control_id, stream_id, token),
        headers={AUTH_TOKEN_FIELD: token},
    )  # fmt: skip
    await peer.connect()

    # Bad streams alongside: no token, the good call's token again, garbage mid-call.
    other_id = "v3:garbage-" + uuid.uuid4().hex
    other = await incoming(srv, other_id, QUICK_NUMBER)
    other_token = answer_of(srv, other_id)["stream_auth_token"]
    bad = await asyncio.gather(
        raw_socket(url, *opening("v3:nobody", "s-1", None)),
        raw_socket(url, *opening(control_id, "s-2", token)),
        raw_socket(url, *opening(other_id, "s-3", other_token), "{not json"),
    )

    # The greeting plays; the caller talks over it (barge-in), asks, hears the answer.
    await peer.wait_heard(after=0.0)
    first_audio = peer.heard[0][0]
    await asyncio.sleep(2.5)
    tts = srv.vox.engine.tts
    question = await synthesize(tts, "Sorry to interrupt, are you open on Sunday afternoon?")
    peer.say(speech_frames(question, 8000))
    async with asyncio.timeout(20):
        while not peer.clears:
            await asyncio.sleep(0.02)
    clear_at = peer.clears[0]
    while peer.saying:
        await asyncio.sleep(0.05)
    said_until = peer.now()
    await peer.wait_utterance_end()  # the reply, whole (its mark came back)
    await peer.hang_up()  # Telnyx: stop, then the socket closes
    hangup = event("call.hangup", call_control_id=control_id, hangup_cause="normal_clearing",
                   hangup_source="caller")  # fmt: skip
    assert (await webhook(srv, hangup)).status_code == 200

    stt = srv.vox.engine.stt
    greeting = (await stt.transcribe(peer.audio16k(until=clear_at))).text
    assert len(words(greeting) & words(TALKER_WELCOME)) >= 3, greeting
    # Nothing of the old utterance after the clear (100 ms of grace for frames in flight);
    # the reply can start only once the caller's line (and its endpoint silence) is over.
    late = [t for t, _ in peer.heard if clear_at + 0.1 < t < said_until - 1.0]
    assert late == []
    reply = (await stt.transcribe(peer.audio16k(since=said_until - 1.0))).text
    assert len(words(reply)) >= 2, reply
    assert peer.marks and not peer.errors
    assert clear_at - first_audio < 10  # the welcome is longer: it was cut

    record = await srv.vox.store.wait_final(call_id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason.startswith("caller_hangup")
    assert (record.carrier, record.carrier_call_id, record.stream_sid) == (
        "telnyx",
        control_id,
        stream_id,
    )
    assert greeting_question_answer(record.transcript), record.transcript
    caller_said = " ".join(e["text"] for e in record.transcript if e["speaker"] == "caller")
    assert record.transcript[0]["interrupted"] and "sunday" in caller_said.lower()
    assert record.recording_path
    # The caller hung up: nothing to hang up at Telnyx.
    assert not srv.stub.of(f"/calls/{control_id}/actions/hangup")

    no_token, replayed, garbage = bad
    assert no_token[0] == 1008 and "no stream token" in no_token[1]
    assert replayed[0] == 1008 and "already" in replayed[1]
    assert garbage[0] == 1008 and "not JSON" in garbage[1]
    failed = await srv.vox.store.wait_final(other["call_id"], 15)
    assert failed.status == CallStatus.FAILED and "protocol_error" in (failed.end_reason or "")
    # The broken call was ours to end: Telnyx is told to hang it up.
    assert srv.stub.of(f"/calls/{other_id}/actions/hangup")


@pytest.mark.models
async def test_our_hang_up_ends_the_telnyx_call(dialect_server: DialectServer) -> None:  # noqa: F811
    srv = dialect_server
    control_id = "v3:api-" + uuid.uuid4().hex
    call_id = (await incoming(srv, control_id, QUICK_NUMBER))["call_id"]
    token = answer_of(srv, control_id)["stream_auth_token"]
    stream_id = str(uuid.uuid4())
    peer = DialectPeer(
        srv.local("wss://voice.example.test/telnyx/media-stream"),
        telnyx_dialect(stream_id),
        opening(control_id, stream_id, token),
    )
    await peer.connect()
    await peer.wait_heard(after=0.0)
    # A key the caller presses reaches the engine.
    bridge = srv.vox.calls.get(call_id)
    assert bridge is not None
    seen: list[SessionEvent] = []
    bridge.gw.observers.append(lambda cid, e: seen.append(e) if cid == call_id else None)
    dtmf = {"event": "dtmf", "stream_id": stream_id, "occurred_at": "now", "dtmf": {"digit": "4"}}
    await peer.ws.send(json.dumps(dtmf))
    async with asyncio.timeout(5):
        while DtmfReceived("4") not in seen:
            await asyncio.sleep(0.02)
    assert await srv.vox.calls.hangup(call_id, EndReason.API_HANGUP)
    assert await peer.closed_by_server() == 1000
    record = await srv.vox.store.wait_final(call_id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "api_hangup"
    assert srv.stub.of(f"/calls/{control_id}/actions/hangup") == [{}]


async def test_dtmf_out_and_transfer_go_to_telnyx_call_control(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    control_id = "v3:api-" + uuid.uuid4().hex
    call_id = (await incoming(srv, control_id, QUICK_NUMBER))["call_id"]
    token = answer_of(srv, control_id)["stream_auth_token"]
    stream_id = str(uuid.uuid4())
    peer = DialectPeer(
        srv.local("wss://voice.example.test/telnyx/media-stream"),
        telnyx_dialect(stream_id),
        opening(control_id, stream_id, token),
    )
    await peer.connect()
    await peer.wait_heard(after=0.0)
    actions, bridge = srv.vox.calls.actions, srv.vox.calls.get(call_id)
    assert actions is not None and bridge is not None
    await actions.send_dtmf(call_id, "1w2#")
    assert srv.stub.of(f"/calls/{control_id}/actions/send_dtmf") == [{"digits": "1w2#"}]
    await bridge.transfer("+15550199000", lambda: actions.transfer(call_id, "+15550199000"))
    assert srv.stub.of(f"/calls/{control_id}/actions/transfer") == [{"to": "+15550199000"}]
    assert await peer.closed_by_server() == 1000
    record = await srv.vox.store.wait_final(call_id, 15)
    assert record.status == CallStatus.COMPLETED
    assert record.end_reason == "transferred:+15550199000"
    assert record.transcript[-1]["text"] == "transferred to +15550199000 (cold)"


async def test_unsigned_forged_and_stale_webhooks_are_refused(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    before = len(await srv.vox.store.list()), len(srv.stub.commands)
    body = event("call.initiated", call_control_id="v3:forged", direction="incoming",
                 **{"from": "+1", "to": QUICK_NUMBER})  # fmt: skip
    good = telnyx_headers(body)
    forged = dict(good, **{"telnyx-signature-ed25519": telnyx_headers(b"other")[
        "telnyx-signature-ed25519"]})  # fmt: skip
    stale = telnyx_headers(body, at=time.time() - 600)
    missing = {"content-type": "application/json"}
    for headers in (missing, forged, stale):
        response = await webhook(srv, body, **headers)
        assert response.status_code == 403, response.text
        assert response.json()["detail"]["field"] == "telnyx-signature-ed25519"
    assert (len(await srv.vox.store.list()), len(srv.stub.commands)) == before
    # Signed but malformed: a 400 naming the field.
    bad = b'{"data": {"event_type": "call.initiated", "payload": {}}}'
    response = await webhook(srv, bad)
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "data.payload.call_control_id"


async def test_outbound_call_dials_then_streams_when_answered(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    vox = srv.vox
    assert vox.carrier.name == "telnyx"
    call_id = "call_tx_out_" + uuid.uuid4().hex[:8]
    await vox.store.create(
        CallRecord(id=call_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    control_id = await vox.carrier.place_call(
        to="+13125550199", from_=QUICK_NUMBER, agent_id=QUICK_AGENT_ID, call_id=call_id
    )
    dial = srv.stub.of("/v2/calls")[-1]
    assert dial["connection_id"] == TELNYX_CONNECTION_ID
    assert (dial["to"], dial["from"]) == ("+13125550199", QUICK_NUMBER)
    assert dial["webhook_url"] == PUBLIC_URL + WEBHOOK
    assert base64.b64decode(dial["client_state"]).decode() == call_id
    assert "stream_url" not in dial  # streamed once answered, with a fresh token

    state = dial["client_state"]
    ringing = event("call.initiated", call_control_id=control_id, direction="outgoing",
                    client_state=state)  # fmt: skip
    assert (await webhook(srv, ringing)).status_code == 200
    assert (await vox.store.get(call_id)).status == CallStatus.RINGING  # type: ignore[union-attr]
    answered = event("call.answered", call_control_id=control_id, client_state=state)
    response = await webhook(srv, answered)
    assert response.json()["action"] == "streaming_start"
    start = answer_of(srv, control_id, "streaming_start")
    assert start["stream_bidirectional_mode"] == "rtp" and start["stream_auth_token"]
    assert vox.phone.tokens.verify(start["stream_auth_token"]).call_id == call_id

    hangup = event("call.hangup", call_control_id=control_id, hangup_cause="user_busy",
                   client_state=state)  # fmt: skip
    assert (await webhook(srv, hangup)).json()["status"] == "busy"
    record = await vox.store.get(call_id)
    assert record is not None and record.end_reason == "carrier:user_busy"

    # Given up while ringing: hung up at Telnyx; once ended, cancelling again is a no.
    ringing_id = "call_tx_cancel_" + uuid.uuid4().hex[:8]
    await vox.store.create(
        CallRecord(id=ringing_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    dialed = await vox.carrier.place_call(
        to="+13125550198", from_=QUICK_NUMBER, agent_id=QUICK_AGENT_ID, call_id=ringing_id
    )
    assert await vox.carrier.call_status(ringing_id) == CallStatus.IN_PROGRESS  # alive
    assert await vox.carrier.cancel(ringing_id) is True
    assert await vox.carrier.call_status(ringing_id) == CallStatus.COMPLETED  # gone
    assert srv.stub.of(f"/calls/{dialed}/actions/hangup") == [{}]
    assert await vox.carrier.cancel(ringing_id) is False  # Telnyx: 90018 already ended
    assert not srv.stub.refused  # every request carried the API key
