"""Exotel's Voicebot stream: the dialect with Exotel's documented messages, the
authenticated dynamic-URL endpoint, and a call over a real WebSocket on the real models."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from gateway.bridge.stream_dialect import (
    CallerAudio,
    Codec,
    Digit,
    Played,
    ProtocolError,
    StreamStarted,
    StreamStopped,
)
from gateway.calls import CallStatus
from gateway.exotel.media_stream import ExotelMediaStream
from gateway.simulated.callee import synthesize
from tests.gateway.dialects import (
    EXOTEL_PASSWORD,
    EXOTEL_USER,
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

SID = "a7e1b6a2c6e84d8c9a6f1a0b2c3d4e5f"


def start(token: str | None = "tok", rate: str = "8000", call_sid: str = "c-1") -> str:
    custom = {"token": token, "lang": "en"} if token else {"lang": "en"}
    return json.dumps(
        {
            "event": "start",
            "sequence_number": 1,
            "stream_sid": SID,
            "start": {
                "stream_sid": SID,
                "call_sid": call_sid,
                "account_sid": "exotel-account",
                "from": "09876543210",
                "to": "08012345678",
                "custom_parameters": custom,
                "media_format": {"encoding": "base64", "sample_rate": rate, "bit_rate": "128kbps"},
            },
        }
    )


def test_start_media_dtmf_mark_stop_and_outgoing_shapes() -> None:
    proto = ExotelMediaStream()
    [started] = proto.receive_text(start())
    assert isinstance(started, StreamStarted)
    assert (started.carrier_call_id, started.codec, started.sample_rate) == (
        "c-1",
        Codec.L16_LE,
        8000,
    )
    assert started.token == "tok" and started.custom["lang"] == "en"
    samples = np.arange(160, dtype=np.int16)
    payload = base64.b64encode(samples.astype("<i2").tobytes()).decode()
    media = {"event": "media", "sequence_number": 2, "stream_sid": SID,
             "media": {"chunk": 1, "timestamp": "20", "payload": payload}}  # fmt: skip
    [audio] = proto.receive_text(json.dumps(media))
    assert isinstance(audio, CallerAudio) and audio.pcm.tolist() == samples.tolist()
    dtmf = {"event": "dtmf", "stream_sid": SID, "sequence_number": 3,
            "dtmf": {"duration": "40", "digit": "9"}}  # fmt: skip
    assert proto.receive_text(json.dumps(dtmf)) == [Digit("9")]
    mark = {"event": "mark", "sequence_number": 4, "stream_sid": SID, "mark": {"name": "u-1"}}
    assert proto.receive_text(json.dumps(mark)) == [Played("u-1")]
    stop = {"event": "stop", "sequence_number": 5, "stream_sid": SID,
            "stop": {"call_sid": "c-1", "account_sid": "a", "reason": "callended"}}  # fmt: skip
    assert proto.receive_text(json.dumps(stop)) == [StreamStopped("exotel stop: callended")]
    # Outbound: 100 ms chunks (1600 bytes at 8 kHz, a multiple of 320).
    assert proto.chunk_samples * 2 == 1600
    msg = json.loads(proto.media(np.zeros(800, dtype=np.int16))[0])
    assert msg["stream_sid"] == SID and len(base64.b64decode(msg["media"]["payload"])) == 1600
    assert json.loads(proto.clear()[0]) == {"event": "clear", "stream_sid": SID}
    assert json.loads(proto.mark("m")[0]) == {
        "event": "mark",
        "stream_sid": SID,
        "mark": {"name": "m"},
    }


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (['{"event": "media", "media": {"payload": ""}}'], "before 'start'"),
        ([start(rate="11025")], "sample_rate 11025"),
        ([start(), '{"event": "media", "media": {"payload": "AAE"}}'], "base64"),
        ([start(), '{"event": "media", "media": {"payload": "AAEC"}}'], "whole samples"),
        ([start(), '{"event": "dance"}'], "unknown event"),
    ],
)
def test_malformed_messages(messages: list[str], error: str) -> None:
    proto = ExotelMediaStream()
    with pytest.raises(ProtocolError, match=error):
        for message in messages:
            proto.receive_text(message)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def voicebot_url(
    srv: DialectServer, call_sid: str, to: str, auth: bool = True
) -> httpx.Response:
    params = {"CallSid": call_sid, "CallFrom": "09876543210", "CallTo": to}
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.get(
            "/exotel/voicebot", params=params,
            auth=(EXOTEL_USER, EXOTEL_PASSWORD) if auth else None,
        )  # fmt: skip


def exotel_dialect(stream_sid: str) -> PeerDialect:
    seq = itertools.count(2)

    def media(pcm: np.ndarray) -> str:
        n = next(seq)
        payload = base64.b64encode(pcm.astype("<i2").tobytes()).decode()
        media = {"chunk": n, "timestamp": str(n * 20), "payload": payload}
        return json.dumps(
            {"event": "media", "sequence_number": n, "stream_sid": stream_sid, "media": media}
        )

    def parse(text: str | bytes) -> tuple[str, Any]:
        msg = json.loads(text)
        if msg["event"] == "media":
            payload = base64.b64decode(msg["media"]["payload"])
            assert len(payload) % 320 == 0 and len(payload) >= 1600  # Exotel's chunk rule
            return "media", np.frombuffer(payload, dtype="<i2").astype(np.int16)
        if msg["event"] == "mark":
            return "mark", msg["mark"]["name"]
        return msg["event"], msg

    def played(name: str) -> str:
        return json.dumps({"event": "mark", "sequence_number": next(seq),
                           "stream_sid": stream_sid, "mark": {"name": name}})  # fmt: skip

    def stop() -> str:
        stop = {"call_sid": "x", "account_sid": "a", "reason": "callended"}
        return json.dumps({"event": "stop", "sequence_number": next(seq),
                           "stream_sid": stream_sid, "stop": stop})  # fmt: skip

    return PeerDialect(8000, media, parse, played, lambda: None, stop)


def opening(token: str | None, call_sid: str) -> list[str | bytes]:
    return [json.dumps({"event": "connected"}), start(token, call_sid=call_sid)]


@pytest.mark.models
async def test_voicebot_call_greeting_turn_barge_in_and_hang_up(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    srv = dialect_server
    refused = await voicebot_url(srv, "c-refused", TALKER_NUMBER, auth=False)
    assert refused.status_code == 401
    assert await srv.vox.store.find_by_carrier_id("c-refused") is None

    call_sid = "c-" + uuid.uuid4().hex
    url = (await voicebot_url(srv, call_sid, TALKER_NUMBER)).json()["url"]
    assert url.startswith("wss://voice.example.test/exotel/media-stream?token=")
    token = url.split("token=")[1]
    local = srv.local(url)
    peer = DialectPeer(local, exotel_dialect(SID), opening(token, call_sid))
    await peer.connect()

    other_sid = "c-" + uuid.uuid4().hex
    other_url = srv.local((await voicebot_url(srv, other_sid, QUICK_NUMBER)).json()["url"])
    bare = local.split("?")[0]
    bad = await asyncio.gather(
        raw_socket(bare, *opening(None, "c-no-token")),
        raw_socket(other_url, *opening(None, other_sid), '{"event": "media"}'),
    )

    await peer.wait_heard(after=0.0)
    await asyncio.sleep(2.5)
    question = await synthesize(srv.vox.engine.tts, "Sorry to interrupt, are you open on Sunday?")
    peer.say(speech_frames(question, 8000))
    async with asyncio.timeout(20):
        while not peer.clears:
            await asyncio.sleep(0.02)
    clear_at = peer.clears[0]
    while peer.saying:
        await asyncio.sleep(0.05)
    said_until = peer.now()
    await peer.wait_utterance_end()  # the reply, whole (its mark came back)
    await peer.hang_up()

    stt = srv.vox.engine.stt
    greeting = (await stt.transcribe(peer.audio16k(until=clear_at))).text
    assert len(words(greeting) & words(TALKER_WELCOME)) >= 3, greeting
    reply = (await stt.transcribe(peer.audio16k(since=said_until - 1.0))).text
    assert len(words(reply)) >= 2, reply
    record = await srv.vox.store.find_by_carrier_id(call_sid)
    assert record is not None
    record = await srv.vox.store.wait_final(record.id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason.startswith("caller_hangup")
    assert greeting_question_answer(record.transcript), record.transcript

    no_token, garbage = bad
    assert no_token[0] == 1008 and "no stream token" in no_token[1]
    assert garbage[0] == 1008 and "'media' must be an object" in garbage[1]
    broken = await srv.vox.store.find_by_carrier_id(other_sid)
    assert broken is not None
    broken = await srv.vox.store.wait_final(broken.id, 15)
    assert broken.status == CallStatus.FAILED and "protocol_error" in (broken.end_reason or "")
