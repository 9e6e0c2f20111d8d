"""Whatever a peer sends on a media stream or to a webhook, the parser answers with its own
error (which ends that one call or request) or with events: never another exception."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.twilio.media_stream import MediaStreamProtocol, ProtocolError
from gateway.twilio.media_stream_client import CarrierStream
from gateway.twilio.routes import FormError, parse_form
from gateway.twilio.signature import twilio_signature, valid_twilio_signature
from tests.gateway.fuzz import FUZZ, NUMBERISH, any_text, dumps, json_values, loose

SID = "MZfuzz"

sequence_numbers = st.integers(-3, 40).map(str) | st.integers(-3, 40) | NUMBERISH | json_values
payloads = st.binary(max_size=500).map(lambda b: base64.b64encode(b).decode()) | st.text(
    max_size=20
)
start_bodies = loose(
    {
        "streamSid": st.sampled_from([SID, ""]),
        "callSid": st.text(max_size=8),
        "tracks": st.lists(st.text(max_size=8), max_size=3),
        "mediaFormat": loose(
            {
                "encoding": st.sampled_from(["audio/x-mulaw", "audio/l16"]),
                "sampleRate": st.sampled_from([8000, "8000", 16000]) | NUMBERISH,
                "channels": st.sampled_from([1, "1", 2]) | NUMBERISH,
            }
        ),
        "customParameters": st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
    }
)
messages = st.fixed_dictionaries(
    {"event": st.sampled_from(["connected", "start", "media", "mark", "dtmf", "stop", "clear"])},
    optional={
        "sequenceNumber": sequence_numbers,
        "streamSid": st.sampled_from([SID, "MZother"]) | json_values,
        "start": start_bodies,
        "media": loose(
            {
                "payload": payloads,
                "track": st.sampled_from(["inbound", "outbound", "both"]),
                "chunk": NUMBERISH,
                "timestamp": NUMBERISH,
            }
        ),
        "mark": loose({"name": st.text(max_size=8)}),
        "dtmf": loose({"digit": st.text(max_size=2), "track": st.text(max_size=8)}),
        "stop": json_values,
    },
)
frames = st.lists(messages.map(dumps) | any_text, max_size=8)


def feed(proto: MediaStreamProtocol, texts: list[str]) -> None:
    for text in texts:
        try:
            proto.receive_text(text)
        except ProtocolError:
            pass


@FUZZ
@given(frames)
def test_any_frames_from_a_fresh_stream_raise_only_protocol_errors(texts: list[str]) -> None:
    feed(MediaStreamProtocol(), texts)


@FUZZ
@given(frames)
def test_any_frames_after_a_valid_start_raise_only_protocol_errors(texts: list[str]) -> None:
    carrier = CarrierStream(stream_sid=SID, call_sid="CA1")
    proto = MediaStreamProtocol()
    proto.receive_text(carrier.connected())
    proto.receive_text(carrier.start({"token": "t"}))
    feed(proto, texts)
    stats = proto.sequence.stats
    assert min(stats.frames_lost, stats.frames_reordered, stats.frames_duplicated) >= 0


@FUZZ
@given(st.binary(max_size=64))
def test_binary_frames_raise_only_protocol_errors(data: bytes) -> None:
    try:
        MediaStreamProtocol().receive_bytes(data)
    except ProtocolError:
        pass


form_bodies = st.binary(max_size=300) | st.lists(
    st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=6
).map(lambda items: "&".join(f"{k}={v}" for k, v in items).encode("utf-8", "surrogatepass"))


@FUZZ
@given(form_bodies, st.text(max_size=40) | st.none())
def test_any_webhook_form_raises_only_the_routes_error_and_signs_without_crashing(
    body: bytes, signature: str | None
) -> None:
    try:
        items = parse_form(body)
    except FormError as exc:
        assert 400 <= exc.status < 500
        return
    url = "https://voice.example.test/twilio/voice?call_id=c1"
    assert isinstance(valid_twilio_signature("token", url, items, signature), bool)
    assert valid_twilio_signature("token", url, items, twilio_signature("token", url, items))


def test_a_valid_form_still_parses() -> None:
    assert parse_form(b"CallSid=CA1&To=%2B1555&From=") == [
        ("CallSid", "CA1"),
        ("To", "+1555"),
        ("From", ""),
    ]
    assert json.dumps(parse_form(b"a=%FF")) == '[["a", "\\ufffd"]]'
