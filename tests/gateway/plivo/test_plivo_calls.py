"""Plivo calls end to end: signed answer and hangup webhooks, the answer XML's
bidirectional stream, a caller speaking Plivo's Audio Streams dialect over a real
WebSocket to the real server and models, and outbound calls against a local stub of
Plivo's REST API."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree as ET

import httpx
import numpy as np
import pytest

from gateway.calls import CallRecord, CallStatus, Direction
from gateway.plivo.carrier import PlivoApi, PlivoCarrier
from gateway.plivo.signature import NONCE_HEADER, SIGNATURE_HEADER, plivo_signature
from gateway.simulated.callee import synthesize
from tests.gateway.dialects import (
    PLIVO_AUTH_ID,
    PLIVO_AUTH_TOKEN,
    PUBLIC_URL,
    QUICK_AGENT_ID,
    QUICK_NUMBER,
    TALKER_NUMBER,
    TALKER_WELCOME,
    DialectPeer,
    DialectServer,
    PeerDialect,
    dialect_server,  # noqa: F401  (the fixture)
    greeting_question_answer,
    raw_socket,
    speech_frames,
)
from voice_core.audio import mulaw
from voice_core.events import DtmfReceived, SessionEvent


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def post_signed(
    srv: DialectServer, path: str, form: dict[str, str], *, sign: bool = True
) -> httpx.Response:
    nonce = uuid.uuid4().hex
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if sign:
        headers[SIGNATURE_HEADER] = plivo_signature(
            PLIVO_AUTH_TOKEN, PUBLIC_URL + path, form.items(), nonce
        )
        headers[NONCE_HEADER] = nonce
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.post(path, content=urlencode(form), headers=headers)


def answer_form(call_uuid: str, to: str, direction: str = "inbound") -> dict[str, str]:
    return {
        "CallUUID": call_uuid,
        "From": "+13125550100",
        "To": to,
        "Direction": direction,
        "CallStatus": "in-progress",
        "Event": "StartApp",
    }


def stream_of(xml: str) -> ET.Element:
    [stream] = ET.fromstring(xml).iter("Stream")
    return stream


def plivo_dialect(stream_id: str) -> PeerDialect:
    seq = itertools.count(2)
    chunks = itertools.count(1)

    def media(pcm: np.ndarray) -> str:
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": next(seq),
                "streamId": stream_id,
                "media": {
                    "track": "inbound",
                    "timestamp": "1705312200000",
                    "chunk": next(chunks),
                    "payload": base64.b64encode(mulaw.encode(pcm)).decode(),
                },
            }
        )

    def parse(text: str) -> tuple[str, Any]:
        msg = json.loads(text)
        if msg["event"] == "playAudio":
            assert msg["media"]["contentType"] == "audio/x-mulaw"
            assert msg["media"]["sampleRate"] == 8000
            return "media", mulaw.decode(base64.b64decode(msg["media"]["payload"]))
        if msg["event"] == "checkpoint":
            assert msg["streamId"] == stream_id
            return "mark", msg["name"]
        if msg["event"] == "clearAudio":
            assert msg["streamId"] == stream_id
            return "clear", None
        return msg["event"], msg

    def played(name: str) -> str:
        return json.dumps({"event": "playedStream", "sequenceNumber": next(seq),
                           "streamId": stream_id, "name": name})  # fmt: skip

    def cleared() -> str:
        return json.dumps({"event": "clearedAudio", "sequenceNumber": next(seq),
                           "streamId": stream_id})  # fmt: skip

    return PeerDialect(8000, media, parse, played, cleared, lambda: None)


def start(call_uuid: str, stream_id: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {
                "callId": call_uuid,
                "streamId": stream_id,
                "accountId": PLIVO_AUTH_ID,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            },
            "extra_headers": "",
        }
    )


async def answered_stream(srv: DialectServer, call_uuid: str, to: str) -> str:
    response = await post_signed(srv, "/plivo/answer", answer_form(call_uuid, to))
    assert response.status_code == 200, response.text
    stream = stream_of(response.text)
    assert (stream.get("bidirectional"), stream.get("keepCallAlive")) == ("true", "true")
    assert stream.get("contentType") == "audio/x-mulaw;rate=8000"
    assert stream.get("audioTrack") == "inbound"
    assert stream.text and stream.text.startswith("wss://voice.example.test/plivo/media-stream?")
    return stream.text


@pytest.mark.models
async def test_inbound_call_greeting_turn_barge_in_and_hang_up(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    call_uuid = str(uuid.uuid4())
    stream_url = await answered_stream(srv, call_uuid, TALKER_NUMBER)
    record = await srv.vox.store.find_by_carrier_id(call_uuid)
    assert record is not None and record.carrier == "plivo"
    url = srv.local(stream_url)
    stream_id = str(uuid.uuid4())
    peer = DialectPeer(url, plivo_dialect(stream_id), [start(call_uuid, stream_id)])
    await peer.connect()

    other_uuid = str(uuid.uuid4())
    other_url = srv.local(await answered_stream(srv, other_uuid, QUICK_NUMBER))
    no_token = url.split("?")[0]
    bad = await asyncio.gather(
        raw_socket(no_token, start("x", "s-1")),
        raw_socket(url, start(call_uuid, "s-2")),  # the same token again
        raw_socket(other_url, start(other_uuid, "s-3"), json.dumps({"event": "media"})),
    )

    await peer.wait_heard(after=0.0)
    await asyncio.sleep(2.5)
    question = await synthesize(
        srv.vox.engine.tts, "Sorry to interrupt, are you open on Sunday afternoon?"
    )
    peer.say(speech_frames(question, 8000))
    async with asyncio.timeout(20):
        while not peer.clears:
            await asyncio.sleep(0.02)
    clear_at = peer.clears[0]
    while peer.saying:
        await asyncio.sleep(0.05)
    said_until = peer.now()
    await peer.wait_utterance_end()  # the reply, whole (its mark came back)
    bridge = srv.vox.calls.get(record.id)
    assert bridge is not None
    seen: list[SessionEvent] = []
    bridge.gw.observers.append(lambda cid, e: seen.append(e) if cid == record.id else None)
    dtmf = {"event": "dtmf", "sequenceNumber": 900, "streamId": stream_id,
            "dtmf": {"track": "inbound", "digit": "#", "timestamp": "1705312201000"}}  # fmt: skip
    await peer.ws.send(json.dumps(dtmf))
    async with asyncio.timeout(5):
        while DtmfReceived("#") not in seen:
            await asyncio.sleep(0.02)
    await peer.hang_up()  # Plivo closes the socket
    hangup = {"CallUUID": call_uuid, "CallStatus": "completed", "HangupCauseName": "Normal Hangup"}
    assert (await post_signed(srv, "/plivo/hangup", hangup)).status_code == 200

    stt = srv.vox.engine.stt
    greeting = (await stt.transcribe(peer.audio16k(until=clear_at))).text
    assert len(words(greeting) & words(TALKER_WELCOME)) >= 3, greeting
    late = [t for t, _ in peer.heard if clear_at + 0.1 < t < said_until - 1.0]
    assert late == []
    reply = (await stt.transcribe(peer.audio16k(since=said_until - 1.0))).text
    assert len(words(reply)) >= 2, reply
    assert peer.marks and not peer.errors

    record = await srv.vox.store.wait_final(record.id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason.startswith("caller_hangup")
    assert (record.carrier_call_id, record.stream_sid) == (call_uuid, stream_id)
    assert greeting_question_answer(record.transcript), record.transcript
    assert record.transcript[0]["interrupted"]
    assert f"/Call/{call_uuid}/" not in [p for _, p, _ in srv.stub.commands]

    missing, replayed, garbage = bad
    assert missing[0] == 1008 and "no stream token" in missing[1]
    assert replayed[0] == 1008 and "already used" in replayed[1]
    assert garbage[0] == 1008 and "'media' must be an object" in garbage[1]
    other = await srv.vox.store.find_by_carrier_id(other_uuid)
    assert other is not None
    other = await srv.vox.store.wait_final(other.id, 15)
    assert other.status == CallStatus.FAILED and "protocol_error" in (other.end_reason or "")
    # That call was ours to end: Plivo is told to hang it up.
    assert ("plivo", f"/Call/{other_uuid}/", {}) in srv.stub.commands


async def test_unsigned_and_forged_webhooks_are_refused(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    before = len(await srv.vox.store.list())
    form = answer_form(str(uuid.uuid4()), QUICK_NUMBER)
    response = await post_signed(srv, "/plivo/answer", form, sign=False)
    assert response.status_code == 403
    assert response.json()["detail"] == {"field": SIGNATURE_HEADER, "error": "signature missing"}
    nonce = "1234"
    forged = {
        "content-type": "application/x-www-form-urlencoded",
        SIGNATURE_HEADER: plivo_signature("wrong-token", PUBLIC_URL + "/plivo/answer",
                                          form.items(), nonce),
        NONCE_HEADER: nonce,
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        response = await client.post("/plivo/answer", content=urlencode(form), headers=forged)
    assert response.status_code == 403 and "does not match" in response.text
    assert len(await srv.vox.store.list()) == before
    # No agent for the number: the call is hung up, not streamed.
    response = await post_signed(srv, "/plivo/answer", answer_form("u-x", "+19999999999"))
    assert ET.fromstring(response.text).find("Hangup") is not None


async def test_outbound_call_dials_answers_with_a_stream_and_maps_status(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    store = srv.vox.store
    api = PlivoApi(PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN, api_base=srv.stub_url)
    carrier = PlivoCarrier(api, public_url=PUBLIC_URL, store=store)
    call_id = "call_pl_out_" + uuid.uuid4().hex[:8]
    await store.create(
        CallRecord(id=call_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    request_uuid = await carrier.place_call(
        to="+13125550199", from_=QUICK_NUMBER, agent_id=QUICK_AGENT_ID, call_id=call_id
    )
    sent = srv.stub.of("/Call/")[-1]
    assert (sent["to"], sent["from"], sent["answer_method"]) == (
        "+13125550199",
        QUICK_NUMBER,
        "POST",
    )
    assert sent["answer_url"] == f"{PUBLIC_URL}/plivo/answer?call_id={call_id}"
    assert sent["hangup_url"] == f"{PUBLIC_URL}/plivo/hangup?call_id={call_id}"
    record = await store.get(call_id)
    assert record is not None and record.carrier_call_id == request_uuid

    call_uuid = str(uuid.uuid4())
    path = urlsplit(sent["answer_url"])
    response = await post_signed(
        srv, f"{path.path}?{path.query}", answer_form(call_uuid, "+13125550199", "outbound")
    )
    token_url = stream_of(response.text).text or ""
    token = token_url.split("token=")[1]
    assert srv.vox.phone.tokens.verify(token).call_id == call_id
    assert (await store.get(call_id)).carrier_call_id == call_uuid  # type: ignore[union-attr]

    path = urlsplit(sent["hangup_url"])
    hangup = {"CallUUID": call_uuid, "RequestUUID": request_uuid, "CallStatus": "no-answer"}
    response = await post_signed(srv, f"{path.path}?{path.query}", hangup)
    assert response.json()["status"] == "no_answer"

    # A second call given up while ringing: the request is cancelled at Plivo.
    ringing = "call_pl_cancel_" + uuid.uuid4().hex[:8]
    await store.create(
        CallRecord(id=ringing, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    ringing_uuid = await carrier.place_call(
        to="+13125550198", from_=QUICK_NUMBER, agent_id=QUICK_AGENT_ID, call_id=ringing
    )
    assert await carrier.call_status(ringing) == CallStatus.IN_PROGRESS  # live at Plivo
    assert await carrier.cancel(ringing) is True
    assert await carrier.call_status(ringing) == CallStatus.COMPLETED  # no longer live
    assert ("plivo", f"/Request/{ringing_uuid}/", {}) in srv.stub.commands
    assert await carrier.cancel(ringing) is False  # gone already: 404 both ways
    assert not srv.stub.refused
    await api.aclose()
