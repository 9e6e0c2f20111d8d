"""Vonage calls end to end: signed answer/event webhooks, the NCCO ``connect``, a caller
speaking Vonage's binary L16 WebSocket dialect to the real server and models, and
outbound calls and hang-ups against a local stub of the Voice API."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest

from gateway.calls import CallRecord, CallStatus, Direction
from gateway.simulated.callee import synthesize
from gateway.vonage.carrier import VonageApi, VonageCarrier
from tests.gateway.dialects import (
    PUBLIC_URL,
    QUICK_AGENT_ID,
    QUICK_NUMBER,
    TALKER_NUMBER,
    TALKER_WELCOME,
    VONAGE_APPLICATION_ID,
    VONAGE_PRIVATE_KEY,
    DialectPeer,
    DialectServer,
    PeerDialect,
    dialect_server,  # noqa: F401  (the fixture)
    greeting_question_answer,
    raw_socket,
    speech_frames,
    vonage_jwt,
)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def answer(srv: DialectServer, call_uuid: str, to: str, **extra: str) -> httpx.Response:
    query = {"to": to.lstrip("+"), "from": "447700900000", "uuid": call_uuid,
             "conversation_uuid": "CON-" + call_uuid, **extra}  # fmt: skip
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.get(
            "/vonage/answer?" + urlencode(query), headers={"Authorization": vonage_jwt(b"")}
        )


async def post_event(srv: DialectServer, path: str, fields: dict[str, Any]) -> httpx.Response:
    body = json.dumps(fields).encode()
    headers = {"Authorization": vonage_jwt(body), "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.post(path, content=body, headers=headers)


def endpoint_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    [connect] = response.json()
    assert connect["action"] == "connect"
    [endpoint] = connect["endpoint"]
    assert endpoint["type"] == "websocket"
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    assert endpoint["uri"] == "wss://voice.example.test/vonage/media-stream"
    return endpoint


def vonage_dialect() -> PeerDialect:
    def media(pcm: np.ndarray) -> bytes:
        return pcm.astype("<i2").tobytes()

    def parse(message: str | bytes) -> tuple[str, Any]:
        if isinstance(message, bytes):
            assert len(message) == 640  # exactly 20 ms at 16 kHz, as Vonage requires
            return "media", np.frombuffer(message, dtype="<i2").astype(np.int16)
        msg = json.loads(message)
        if msg.get("action") == "clear":
            return "clear", None
        if msg.get("action") == "notify":
            return "mark", msg["payload"]["name"]
        return str(msg), msg

    def played(name: str) -> str:
        return json.dumps({"event": "websocket:notify", "payload": {"name": name}})

    return PeerDialect(16000, media, parse, played, lambda: None, lambda: None)


def connected(headers: dict[str, str]) -> str:
    return json.dumps(
        {"event": "websocket:connected", "content-type": "audio/l16;rate=16000", **headers}
    )


@pytest.mark.models
async def test_inbound_call_greeting_turn_barge_in_and_hang_up(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    call_uuid = str(uuid.uuid4())
    endpoint = endpoint_of(await answer(srv, call_uuid, TALKER_NUMBER))
    assert endpoint["headers"]["vonage_uuid"] == call_uuid
    url = srv.local(endpoint["uri"])
    peer = DialectPeer(url, vonage_dialect(), [connected(endpoint["headers"])])
    await peer.connect()

    other_uuid = str(uuid.uuid4())
    other = endpoint_of(await answer(srv, other_uuid, QUICK_NUMBER))["headers"]
    bad = await asyncio.gather(
        raw_socket(url, connected({"vonage_uuid": "x"})),  # no token
        raw_socket(url, b"\x00" * 640),  # audio first
        raw_socket(url, connected(other), b"\x00" * 641),  # a torn frame mid-call
    )

    await peer.wait_heard(after=0.0)
    await asyncio.sleep(2.5)
    question = await synthesize(
        srv.vox.engine.tts, "Sorry to interrupt, are you open on Sunday afternoon?"
    )
    peer.say(speech_frames(question, 16000))
    async with asyncio.timeout(20):
        while not peer.clears:
            await asyncio.sleep(0.02)
    clear_at = peer.clears[0]
    while peer.saying:
        await asyncio.sleep(0.05)
    said_until = peer.now()
    await peer.wait_utterance_end()  # the reply, whole (its mark came back)
    await peer.hang_up()
    status = {"status": "completed", "uuid": call_uuid, "conversation_uuid": "CON-" + call_uuid}
    record = await srv.vox.store.find_by_carrier_id(call_uuid)
    assert record is not None
    response = await post_event(srv, f"/vonage/event?call_id={record.id}", status)
    assert response.status_code == 200, response.text

    stt = srv.vox.engine.stt
    greeting = (await stt.transcribe(peer.audio16k(until=clear_at))).text
    assert len(words(greeting) & words(TALKER_WELCOME)) >= 3, greeting
    assert [t for t, _ in peer.heard if clear_at + 0.1 < t < said_until - 1.0] == []
    reply = (await stt.transcribe(peer.audio16k(since=said_until - 1.0))).text
    assert len(words(reply)) >= 2, reply
    assert peer.marks and not peer.errors

    record = await srv.vox.store.wait_final(record.id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason.startswith("caller_hangup")
    assert (record.carrier, record.carrier_call_id) == ("vonage", call_uuid)
    assert greeting_question_answer(record.transcript), record.transcript
    assert record.transcript[0]["interrupted"]

    no_token, audio_first, torn = bad
    assert no_token[0] == 1008 and "no stream token" in no_token[1]
    assert audio_first[0] == 1008 and "before 'websocket:connected'" in audio_first[1]
    assert torn[0] == 1008 and "20 ms" in torn[1]
    broken = await srv.vox.store.find_by_carrier_id(other_uuid)
    assert broken is not None
    broken = await srv.vox.store.wait_final(broken.id, 15)
    assert broken.status == CallStatus.FAILED and "protocol_error" in (broken.end_reason or "")
    assert ("vonage", f"/v1/calls/{other_uuid}", {"action": "hangup"}) in srv.stub.commands


async def test_unsigned_and_forged_webhooks_are_refused(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    before = len(await srv.vox.store.list())
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        query = "/vonage/answer?uuid=u-forged&to=15550001111"
        unsigned = await client.get(query)
        forged = await client.get(
            query, headers={"Authorization": vonage_jwt(b"", secret="x" * 40)}
        )
        body = json.dumps({"status": "completed", "uuid": "u-1"}).encode()
        swapped = await client.post(  # a genuine token for another body
            "/vonage/event", content=body, headers={"Authorization": vonage_jwt(b"{}")}
        )
    for response, why in ((unsigned, "missing"), (forged, "invalid"), (swapped, "payload_hash")):
        assert response.status_code == 403 and why in response.json()["detail"]["error"]
    assert len(await srv.vox.store.list()) == before


async def test_outbound_call_and_our_hang_up_through_the_voice_api(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    store = srv.vox.store
    api = VonageApi(VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY, api_base=srv.stub_url)
    carrier = VonageCarrier(api, public_url=PUBLIC_URL, store=store)
    call_id = "call_vg_out_" + uuid.uuid4().hex[:8]
    await store.create(
        CallRecord(id=call_id, agent_id=QUICK_AGENT_ID, direction=Direction.OUTBOUND)
    )
    call_uuid = await carrier.place_call(
        to="+447700900001", from_=QUICK_NUMBER, agent_id=QUICK_AGENT_ID, call_id=call_id
    )
    sent = srv.stub.of("/v1/calls")[-1]
    assert sent["to"] == [{"type": "phone", "number": "447700900001"}]
    assert sent["answer_url"] == [f"{PUBLIC_URL}/vonage/answer?call_id={call_id}"]
    assert sent["event_url"] == [f"{PUBLIC_URL}/vonage/event?call_id={call_id}"]
    endpoint = endpoint_of(await answer(srv, call_uuid, "447700900001", call_id=call_id))
    assert srv.vox.phone.tokens.verify(endpoint["headers"]["token"]).call_id == call_id
    ringing = {"status": "ringing", "uuid": call_uuid}
    response = await post_event(srv, f"/vonage/event?call_id={call_id}", ringing)
    assert response.json()["status"] == "ringing"
    # Events of the WebSocket leg (its own uuid) change nothing.
    leg = {"status": "completed", "uuid": "websocket-leg-uuid"}
    assert (await post_event(srv, f"/vonage/event?call_id={call_id}", leg)).json()[
        "applied"
    ] is False
    assert await carrier.call_status(call_id) == CallStatus.IN_PROGRESS  # answered
    assert await api.hang_up(call_uuid) is True
    assert await carrier.call_status(call_id) == CallStatus.COMPLETED
    assert ("vonage", f"/v1/calls/{call_uuid}", {"action": "hangup"}) in srv.stub.commands
    assert await carrier.cancel(call_id) is False  # already hung up: 404
    assert not srv.stub.refused  # every request carried a valid application JWT
    await api.aclose()
