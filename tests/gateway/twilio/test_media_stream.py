"""The media-stream protocol with plain strings: what a carrier sends, what we answer."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.twilio.media_stream import (
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaStreamProtocol,
    ProtocolError,
    Start,
    Stop,
)
from gateway.twilio.media_stream_client import CarrierStream, ClearBuffer, PlayMark, PlayMedia

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def start_msg(**overrides: object) -> str:
    start = {
        "accountSid": "AC" + "1" * 32,
        "streamSid": SID,
        "callSid": "CA" + "2" * 32,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"agent_id": "bright-smile", "call_id": "call_1"},
    }
    start.update(overrides)
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": SID})


def media_msg(payload: bytes, seq: int | str = 2, raw: str | None = None) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": "1",
                "timestamp": "5",
                "payload": raw if raw is not None else base64.b64encode(payload).decode(),
            },
            "streamSid": SID,
        }
    )


def started() -> MediaStreamProtocol:
    proto = MediaStreamProtocol()
    proto.receive_text('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    proto.receive_text(start_msg())
    return proto


def test_twilio_session_parses_into_typed_events() -> None:
    proto = MediaStreamProtocol()
    assert proto.receive_text('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == [
        Connected("Call", "1.0.0")
    ]
    [start] = proto.receive_text(start_msg())
    assert isinstance(start, Start)
    assert start.stream_sid == SID
    assert start.call_sid.startswith("CA")
    assert start.custom_parameters == {"agent_id": "bright-smile", "call_id": "call_1"}
    assert start.media_format.sample_rate == 8000
    [media] = proto.receive_text(media_msg(b"\xff" * 160))
    assert media == Media(b"\xff" * 160, "inbound", 1, 5)
    [dtmf] = proto.receive_text(
        json.dumps(
            {
                "event": "dtmf",
                "streamSid": SID,
                "sequenceNumber": "3",
                "dtmf": {"track": "inbound_track", "digit": "7"},
            }
        )
    )
    assert dtmf == Dtmf("7", "inbound_track")
    [stop] = proto.receive_text(
        json.dumps(
            {
                "event": "stop",
                "sequenceNumber": "4",
                "streamSid": SID,
                "stop": {"accountSid": "AC1", "callSid": "CA2"},
            }
        )
    )
    assert stop == Stop("CA2", "AC1")


def test_outbound_messages_carry_stream_sid_and_whole_frames() -> None:
    proto = started()
    messages = [json.loads(m) for m in proto.media(bytes(range(160)) * 3)]
    assert len(messages) == 3
    for m in messages:
        assert m["event"] == "media" and m["streamSid"] == SID
        assert len(base64.b64decode(m["media"]["payload"])) == 160
    assert base64.b64decode(messages[0]["media"]["payload"]) == bytes(range(160))
    with pytest.raises(ValueError, match="20 ms"):
        proto.media(b"\x00" * 100)
    assert json.loads(proto.mark("utterance-1")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "utterance-1"},
    }
    assert json.loads(proto.clear()) == {"event": "clear", "streamSid": SID}


def test_nothing_can_be_sent_before_start() -> None:
    with pytest.raises(RuntimeError, match="before 'start'"):
        MediaStreamProtocol().mark("x")


def test_echoed_marks_resolve_pending_ones() -> None:
    proto = started()
    proto.mark("utterance-1")
    proto.mark("utterance-2")
    echo = {
        "event": "mark",
        "sequenceNumber": "2",
        "streamSid": SID,
        "mark": {"name": "utterance-1"},
    }
    assert proto.receive_text(json.dumps(echo)) == [Mark("utterance-1", known=True)]
    assert proto.pending_marks == ["utterance-2"]
    echo.update(sequenceNumber="3", mark={"name": "never-sent"})
    assert proto.receive_text(json.dumps(echo)) == [Mark("never-sent", known=False)]


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        (["this is not json"], "not JSON"),
        (['["an", "array"]'], "not an object"),
        (['{"event": "dance"}'], "unknown event"),
        (['{"sequenceNumber": "1"}'], "no 'event'"),
        ([media_msg(b"\xff" * 160, seq=1)], "'media' before 'start'"),
        (['{"event": "stop", "sequenceNumber": "1", "stop": {}}'], "'stop' before 'start'"),
        ([start_msg(), media_msg(b"\xff" * 100)], "100 bytes"),
        ([start_msg(), media_msg(b"", raw="")], "0 bytes"),
        ([start_msg(), media_msg(b"", raw="%%%not-base64%%%")], "not valid base64"),
        ([start_msg(), start_msg().replace('"1"', '"2"', 1)], "second 'start'"),
        (
            [start_msg(mediaFormat={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1})],
            "unsupported mediaFormat",
        ),
        ([start_msg(customParameters={"agent_id": 5})], "customParameters"),
        ([start_msg(), media_msg(b"\xff" * 160, seq="2x")], "sequenceNumber must be a decimal"),
        ([start_msg(), media_msg(b"\xff" * 160, seq="²")], "sequenceNumber must be a decimal"),
        (['{"event": "media", "sequenceNumber": ' + "9" * 5000 + "}"], "not JSON"),
        ([start_msg(), media_msg(b"\xff" * 160).replace(SID, "MZother")], "not this stream's"),
    ],
)
def test_bad_messages_raise_a_protocol_error_naming_the_problem(
    messages: list[str], problem: str
) -> None:
    proto = MediaStreamProtocol()
    with pytest.raises(ProtocolError, match=problem):
        for message in messages:
            proto.receive_text(message)
    # The stream is dead after an error: nothing more is accepted.
    with pytest.raises(ProtocolError, match="already failed"):
        proto.receive_text(media_msg(b"\xff" * 160, seq=99))


def test_binary_frames_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="binary frame"):
        started().receive_bytes(b"\x00\x01")


def test_carrier_side_speaks_what_the_server_side_understands() -> None:
    carrier = CarrierStream(stream_sid=SID, call_sid="CA9")
    server = MediaStreamProtocol()
    server.receive_text(carrier.connected())
    [start] = server.receive_text(carrier.start({"agent_id": "a", "call_id": "c"}))
    assert isinstance(start, Start) and start.custom_parameters["agent_id"] == "a"
    [media] = server.receive_text(carrier.media(b"\x7f" * 160, timestamp_ms=40))
    assert isinstance(media, Media) and media.timestamp == 40 and media.chunk == 1
    assert server.receive_text(carrier.dtmf("#")) == [Dtmf("#", "inbound_track")]
    mark = server.mark("m1")
    assert carrier.receive_text(mark) == PlayMark("m1")
    assert server.receive_text(carrier.mark("m1")) == [Mark("m1", known=True)]
    assert carrier.receive_text(server.clear()) == ClearBuffer()
    [out] = server.media(b"\x01" * 160)
    assert carrier.receive_text(out) == PlayMedia(b"\x01" * 160)
    assert isinstance(server.receive_text(carrier.stop())[0], Stop)


def mark_msg(name: str, seq: int) -> str:
    return json.dumps(
        {"event": "mark", "sequenceNumber": str(seq), "streamSid": SID, "mark": {"name": name}}
    )


def test_a_gap_a_repeat_and_a_late_message_are_counted_and_the_stream_goes_on() -> None:
    proto = started()
    proto.mark("utterance-1")
    frame = b"\x7f" * 160
    assert proto.receive_text(media_msg(frame, seq=2)) == [Media(frame, "inbound", 1, 5)]
    # 3 and 4 lost on the way (a gap): the frame after them is taken.
    assert len(proto.receive_text(media_msg(frame, seq=5))) == 1
    # The carrier sent 5 twice: the repeat is dropped, not handled twice.
    assert proto.receive_text(media_msg(frame, seq=5)) == []
    # 4 overtaken by 5: a late media frame is dropped (its audio is already behind us)...
    assert proto.receive_text(media_msg(frame, seq=4)) == []
    # ...while a late mark still says something true: it resolves the pending one.
    assert proto.receive_text(mark_msg("utterance-1", seq=3)) == [Mark("utterance-1", True)]
    assert proto.pending_marks == []
    # And the stream still takes the next message in order.
    assert len(proto.receive_text(media_msg(frame, seq=6))) == 1
    assert proto.state.value == "streaming"
    stats = proto.sequence.stats.as_dict()
    assert stats == {"frames_lost": 0, "frames_reordered": 2, "frames_duplicated": 1}


def test_numbers_skipped_and_never_seen_count_as_lost() -> None:
    proto = started()
    frame = b"\xff" * 160
    for seq in (2, 3, 7, 8, 20):
        proto.receive_text(media_msg(frame, seq=seq))
    assert proto.sequence.stats.frames_lost == 3 + 11
    # A repeat of the start (same number) is dropped, not "a second 'start'".
    assert proto.receive_text(start_msg()) == []
    assert proto.sequence.stats.frames_duplicated == 1


def test_a_late_frame_from_another_stream_still_ends_it() -> None:
    proto = started()
    proto.receive_text(media_msg(b"\xff" * 160, seq=5))
    with pytest.raises(ProtocolError, match="not this stream's"):
        proto.receive_text(media_msg(b"\xff" * 160, seq=4).replace(SID, "MZother"))
