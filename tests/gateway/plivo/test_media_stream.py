"""The Plivo dialect with the messages Plivo documents (Audio Streaming protocol reference)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from gateway.bridge.stream_dialect import (
    CallerAudio,
    Cleared,
    Codec,
    Digit,
    Played,
    ProtocolError,
    StreamStarted,
)
from gateway.plivo.media_stream import PlivoMediaStream
from voice_core.audio import mulaw

STREAM = "87654321-4321-4321-4321-cba987654321"


def start(encoding: str = "audio/x-mulaw", rate: int = 8000) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {
                "callId": "12345678-1234-1234-1234-123456789abc",
                "streamId": STREAM,
                "accountId": "MAXXXXXXXXXXXXXXXXXX",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": encoding, "sampleRate": rate},
            },
            "extra_headers": "userId=12345;sessionId=abcxyz",
        }
    )


def media(payload: bytes, chunk: int = 41) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": 42,
            "streamId": STREAM,
            "media": {
                "track": "inbound",
                "timestamp": "1705312200000",
                "chunk": chunk,
                "payload": base64.b64encode(payload).decode(),
            },
            "extra_headers": "userId=12345;sessionId=abcxyz",
        }
    )


def test_start_media_dtmf_checkpoints_and_clear() -> None:
    proto = PlivoMediaStream()
    [started] = proto.receive_text(start())
    assert started == StreamStarted(
        stream_id=STREAM,
        carrier_call_id="12345678-1234-1234-1234-123456789abc",
        codec=Codec.MULAW,
        sample_rate=8000,
        custom={"userId": "12345", "sessionId": "abcxyz"},
    )
    samples = np.full(160, 3000, dtype=np.int16)
    [audio] = proto.receive_text(media(mulaw.encode(samples)))
    assert isinstance(audio, CallerAudio) and audio.pcm.size == 160
    dtmf = {"event": "dtmf", "sequenceNumber": 43, "streamId": STREAM,
            "dtmf": {"track": "inbound", "digit": "5", "timestamp": "1705312201000"}}  # fmt: skip
    assert proto.receive_text(json.dumps(dtmf)) == [Digit("5")]
    played = {"event": "playedStream", "sequenceNumber": 44, "streamId": STREAM, "name": "u-1"}
    assert proto.receive_text(json.dumps(played)) == [Played("u-1")]
    older = {"event": "played", "streamId": STREAM, "name": "u-0"}  # the support pages' name
    assert proto.receive_text(json.dumps(older)) == [Played("u-0")]
    cleared = {"event": "clearedAudio", "sequenceNumber": 45, "streamId": STREAM}
    assert proto.receive_text(json.dumps(cleared)) == [Cleared()]


def test_outgoing_play_audio_checkpoint_and_clear_audio() -> None:
    proto = PlivoMediaStream()
    proto.receive_text(start())
    [play] = proto.media(np.zeros(160, dtype=np.int16))
    msg = json.loads(play)
    assert msg["event"] == "playAudio"
    assert (msg["media"]["contentType"], msg["media"]["sampleRate"]) == ("audio/x-mulaw", 8000)
    assert len(base64.b64decode(msg["media"]["payload"])) == 160
    assert json.loads(proto.mark("u-2")[0]) == {
        "event": "checkpoint", "streamId": STREAM, "name": "u-2"
    }  # fmt: skip
    assert json.loads(proto.clear()[0]) == {"event": "clearAudio", "streamId": STREAM}


def test_l16_16k_is_little_endian_both_ways() -> None:
    proto = PlivoMediaStream()
    proto.receive_text(start("audio/x-l16", 16000))
    samples = np.array([5, -6, 7000], dtype=np.int16)
    [audio] = proto.receive_text(media(samples.astype("<i2").tobytes()))
    assert isinstance(audio, CallerAudio) and audio.pcm.tolist() == [5, -6, 7000]
    msg = json.loads(proto.media(samples)[0])
    assert msg["media"]["contentType"] == "audio/x-l16" and msg["media"]["sampleRate"] == 16000
    assert base64.b64decode(msg["media"]["payload"]) == samples.astype("<i2").tobytes()
    assert proto.chunk_samples == 320


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (["nope"], "not JSON"),
        ([media(b"\xff" * 160)], "'media' before 'start'"),
        ([start("audio/opus")], "encoding 'audio/opus'"),
        ([start("audio/x-mulaw", 16000)], "sampleRate 16000"),
        ([start(), start()], "a second 'start'"),
        ([start(), media(b"\x01" * 3).replace("AQEB", "@@@@")], "base64"),
        ([start(), json.dumps({"event": "dtmf", "dtmf": {"digit": "55"}})], "digit"),
        ([start(), json.dumps({"event": "playedStream"})], "'name'"),
        ([start(), json.dumps({"event": "surprise"})], "unknown event"),
    ],
)
def test_malformed_messages_raise_naming_what_is_wrong(messages: list[str], error: str) -> None:
    proto = PlivoMediaStream()
    with pytest.raises(ProtocolError) as raised:
        for message in messages:
            proto.receive_text(message)
    assert error in raised.value.message


def test_odd_l16_payloads_are_refused() -> None:
    proto = PlivoMediaStream()
    proto.receive_text(start("audio/x-l16", 16000))
    with pytest.raises(ProtocolError, match="whole samples"):
        proto.receive_text(media(b"\x00\x01\x02"))
