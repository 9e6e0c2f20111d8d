"""The Telnyx dialect with the messages Telnyx documents (media streaming over WebSockets)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from gateway.bridge.stream_dialect import (
    CallerAudio,
    Codec,
    Digit,
    Ignored,
    Played,
    ProtocolError,
    StreamStarted,
    StreamStopped,
)
from gateway.telnyx.media_stream import TelnyxMediaStream
from voice_core.audio import mulaw

CONNECTED = {"event": "connected", "version": "1.0.0", "x-telnyx-streaming-auth-token": "tok"}


def start(encoding: str = "PCMU", rate: int = 8000) -> dict:
    return {
        "event": "start",
        "sequence_number": "1",
        "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        "start": {
            "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
            "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
            "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
            "from": "+13122010094",
            "to": "+13122123456",
            "tags": ["TAG1"],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "custom_parameters": {"customer_id": "customer_123"},
            "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
        },
    }


def media(chunk: int, payload: bytes, track: str = "inbound") -> str:
    return json.dumps(
        {
            "event": "media",
            "sequence_number": str(chunk + 2),
            "media": {
                "track": track,
                "chunk": str(chunk),
                "timestamp": str(chunk * 20),
                "payload": base64.b64encode(payload).decode(),
            },
            "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        }
    )


def started() -> TelnyxMediaStream:
    proto = TelnyxMediaStream()
    proto.receive_text(json.dumps(CONNECTED))
    [event] = proto.receive_text(json.dumps(start()))
    assert isinstance(event, StreamStarted)
    return proto


def tone(level: int) -> bytes:
    return mulaw.encode(np.full(160, level, dtype=np.int16))


def test_start_names_the_call_its_format_and_the_auth_token() -> None:
    proto = TelnyxMediaStream()
    assert proto.receive_text(json.dumps(CONNECTED)) == [Ignored("connected")]
    [event] = proto.receive_text(json.dumps(start()))
    assert event == StreamStarted(
        stream_id="32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        carrier_call_id="v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
        codec=Codec.MULAW,
        sample_rate=8000,
        token="tok",
        from_number="+13122010094",
        to_number="+13122123456",
        custom={"customer_id": "customer_123"},
    )
    assert proto.chunk_samples == 160


def test_l16_at_16k_is_big_endian() -> None:
    proto = TelnyxMediaStream()
    proto.receive_text(json.dumps(start("L16", 16000)))
    samples = np.array([1, -2, 300], dtype=np.int16)
    [audio] = proto.receive_text(media(0, samples.astype(">i2").tobytes()))
    assert isinstance(audio, CallerAudio) and audio.pcm.tolist() == [1, -2, 300]
    [out] = proto.media(samples)
    payload = base64.b64decode(json.loads(out)["media"]["payload"])
    assert payload == samples.astype(">i2").tobytes() and proto.chunk_samples == 320


def test_out_of_order_frames_are_put_back_in_order_and_late_ones_dropped() -> None:
    proto = started()
    levels = {n: 1000 * (n + 1) for n in range(8)}

    def arrive(n: int) -> list[int]:
        out = proto.receive_text(media(n, tone(levels[n])))
        return [round(float(np.median(e.pcm)) / 1000) for e in out if isinstance(e, CallerAudio)]

    got = arrive(0) + arrive(2) + arrive(1) + arrive(3)
    assert got == [1, 2, 3, 4]  # 2 waited for 1
    # 4 is lost: once more than three frames wait, the gap is skipped ...
    got = arrive(5) + arrive(6) + arrive(7)
    assert got == []
    more = proto.receive_text(media(8, tone(9000)))
    assert len(more) == 4
    # ... and 4 arriving after the stream moved on is dropped, not played late.
    assert arrive(4) == [] and proto.dropped_late == 1


def test_keys_marks_stop_and_errors() -> None:
    proto = started()
    assert proto.receive_text(media(0, tone(0), track="outbound")) == []
    dtmf = {"event": "dtmf", "stream_id": "s", "occurred_at": "x", "dtmf": {"digit": "7"}}
    assert proto.receive_text(json.dumps(dtmf)) == [Digit("7")]
    mark = {"event": "mark", "sequence_number": "9", "stream_id": "s", "mark": {"name": "u-1"}}
    assert proto.receive_text(json.dumps(mark)) == [Played("u-1")]
    error = {"event": "error", "payload": {"code": 100002, "title": "unknown_error"}}
    [ignored] = proto.receive_text(json.dumps(error))
    assert isinstance(ignored, Ignored) and "unknown_error" in ignored.detail
    stop = {"event": "stop", "sequence_number": "10", "stop": {"call_control_id": "v2:x"}}
    assert proto.receive_text(json.dumps(stop)) == [StreamStopped("telnyx stop")]


def test_outgoing_messages_have_telnyx_shapes() -> None:
    proto = started()
    [media_msg] = proto.media(np.zeros(160, dtype=np.int16))
    assert json.loads(media_msg)["event"] == "media"
    assert len(base64.b64decode(json.loads(media_msg)["media"]["payload"])) == 160
    assert [json.loads(m) for m in proto.clear()] == [{"event": "clear"}]
    assert [json.loads(m) for m in proto.mark("utterance-1")] == [
        {"event": "mark", "mark": {"name": "utterance-1"}}
    ]


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (["not json"], "not JSON"),
        (["[1, 2]"], "not a JSON object"),
        ([media(0, tone(0))], "'media' before 'start'"),
        ([json.dumps(start("OPUS"))], "encoding 'OPUS'"),
        ([json.dumps(start("PCMU", 16000))], "sample_rate 16000"),
        ([json.dumps(start()), json.dumps(start())], "a second 'start'"),
        (
            [json.dumps(start()), json.dumps({"event": "media", "media": {"payload": "%%"}})],
            "base64",
        ),
        ([json.dumps(start()), json.dumps({"event": "dtmf", "dtmf": {"digit": "X"}})], "digit"),
        ([json.dumps(start()), json.dumps({"event": "bogus"})], "unknown event 'bogus'"),
    ],
)
def test_malformed_messages_raise_naming_what_is_wrong(messages: list[str], error: str) -> None:
    proto = TelnyxMediaStream()
    with pytest.raises(ProtocolError) as raised:
        for message in messages:
            proto.receive_text(message)
    assert error in raised.value.message


def test_binary_and_oversized_media_are_refused() -> None:
    proto = started()
    with pytest.raises(ProtocolError):
        proto.receive_bytes(b"\x00" * 160)
    with pytest.raises(ProtocolError, match="over 1 s"):
        proto.receive_text(media(0, b"\xff" * 16000))
