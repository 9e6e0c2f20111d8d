"""The Vonage dialect (Voice API WebSockets) and its signed-webhook JWT check."""

from __future__ import annotations

import hashlib
import json
import time

import jwt
import numpy as np
import pytest

from gateway.bridge.stream_dialect import (
    CallerAudio,
    Cleared,
    Codec,
    Digit,
    Ignored,
    Played,
    ProtocolError,
    StreamStarted,
)
from gateway.vonage.media_stream import VonageMediaStream
from gateway.vonage.signature import jwt_problem

CONNECTED = {
    "event": "websocket:connected",
    "content-type": "audio/l16;rate=16000",
    "token": "tok",
    "vonage_uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356",
    "shop": "north",
}


def connected() -> VonageMediaStream:
    proto = VonageMediaStream()
    proto.receive_text(json.dumps(CONNECTED))
    return proto


def test_the_first_message_names_the_format_token_and_call() -> None:
    proto = VonageMediaStream()
    [started] = proto.receive_text(json.dumps(CONNECTED))
    assert started == StreamStarted(
        stream_id="",
        carrier_call_id="63f61863-4a51-4f6b-86e1-46edebcf9356",
        codec=Codec.L16_LE,
        sample_rate=16000,
        token="tok",
        custom={"shop": "north"},
    )
    assert proto.chunk_samples == 320


def test_binary_l16_in_and_out_dtmf_notify_and_clear() -> None:
    proto = connected()
    samples = (np.arange(320) - 160).astype(np.int16)
    [audio] = proto.receive_bytes(samples.astype("<i2").tobytes())
    assert isinstance(audio, CallerAudio) and audio.pcm.tolist() == samples.tolist()
    assert proto.media(samples) == [samples.astype("<i2").tobytes()]
    dtmf = {"event": "websocket:dtmf", "digit": "#", "duration": 260}
    assert proto.receive_text(json.dumps(dtmf)) == [Digit("#")]
    notify = {"event": "websocket:notify", "payload": {"name": "utterance-3"}}
    assert proto.receive_text(json.dumps(notify)) == [Played("utterance-3")]
    assert proto.receive_text(json.dumps({"event": "websocket:cleared"})) == [Cleared()]
    later = {"event": "websocket:media:update", "content-type": "audio/l16;rate=16000"}
    assert proto.receive_text(json.dumps(later)) == [Ignored("websocket:media:update")]
    assert [json.loads(m) for m in proto.clear()] == [{"action": "clear"}]
    assert [json.loads(m) for m in proto.mark("u-1")] == [
        {"action": "notify", "payload": {"name": "u-1"}}
    ]


@pytest.mark.parametrize(
    ("text", "data", "error"),
    [
        (None, b"\x00" * 640, "audio before 'websocket:connected'"),
        (json.dumps({**CONNECTED, "content-type": "audio/opus"}), None, "content-type"),
        ("{oops", None, "not JSON"),
        (json.dumps({"event": "websocket:dtmf", "digit": "1"}), None, "before"),
    ],
)
def test_malformed_before_the_stream_starts(
    text: str | None, data: bytes | None, error: str
) -> None:
    proto = VonageMediaStream()
    with pytest.raises(ProtocolError, match=error):
        if text is not None:
            proto.receive_text(text)
        else:
            proto.receive_bytes(data or b"")


def test_malformed_during_the_stream() -> None:
    for text, error in [
        (json.dumps(CONNECTED), "a second"),
        (json.dumps({"event": "websocket:notify", "payload": {}}), "payload.name"),
        (json.dumps({"event": "mystery"}), "unknown event"),
    ]:
        with pytest.raises(ProtocolError, match=error):
            connected().receive_text(text)
    with pytest.raises(ProtocolError, match="whole 20 ms"):
        connected().receive_bytes(b"\x00" * 641)


SECRET = "vonage-signature-secret-0123456789abcdef"
BODY = b'{"status":"answered","uuid":"u-1"}'


def signed(body: bytes, *, iat: float, secret: str = SECRET, **extra: object) -> str:
    claims = {"iat": int(iat), "jti": "j", "payload_hash": hashlib.sha256(body).hexdigest()}
    claims.update(extra)
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def test_signed_webhook_jwt_good_bad_missing_stale() -> None:
    now = time.time()
    assert jwt_problem(SECRET, signed(BODY, iat=now), BODY) is None
    assert jwt_problem(SECRET, signed(b"", iat=now), b"") is None  # a GET answer URL
    assert jwt_problem(SECRET, None, BODY) == "missing"
    assert jwt_problem(
        SECRET, signed(BODY, iat=now, secret="another-signature-secret-0123456789abcdef"), BODY
    ).startswith("invalid")
    assert jwt_problem(SECRET, signed(BODY, iat=now - 600), BODY) == "too old"
    assert "does not match" in (jwt_problem(SECRET, signed(BODY, iat=now), b'{"x":1}') or "")
    none_alg = "Bearer " + jwt.encode({"iat": int(now)}, None, algorithm="none")  # type: ignore[arg-type]
    assert jwt_problem(SECRET, none_alg, BODY).startswith("invalid")
