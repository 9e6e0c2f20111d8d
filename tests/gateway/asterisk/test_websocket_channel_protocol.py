"""Asterisk's WebSocket channel with plain strings and bytes.

The messages are the documented ones (docs.asterisk.org "WebSocket" channel driver)
and the exact shapes chan_websocket.c prints, plain-text and JSON.
"""

from __future__ import annotations

import json

import pytest

from gateway.asterisk.websocket_channel.media_format import FORMATS
from gateway.asterisk.websocket_channel.protocol import (
    ControlFormat,
    DriverError,
    DtmfEnd,
    Hangup,
    Media,
    MediaBufferingCompleted,
    MediaMarkProcessed,
    MediaStart,
    MediaXoff,
    MediaXon,
    ProtocolError,
    QueueDrained,
    State,
    Status,
    UnknownEvent,
    WebSocketChannelProtocol,
)

# The docs' notification example, and the fuller line current releases print.
DOC_START = (
    "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 "
    "channel:WebSocket/connectionid format:ulaw optimal_frame_size:160"
)
SLIN16_START = (
    "MEDIA_START connection_id:media_connection1 "
    "channel:WebSocket/media_connection1/0x5140001a0040 channel_id:1761245643.1 "
    "format:slin16 optimal_frame_size:640 ptime:20"
)
JSON_START = json.dumps(
    {
        "event": "MEDIA_START",
        "connection_id": "media_connection1",
        "channel": "WebSocket/media_connection1/0x5140001a0040",
        "channel_id": "1761245643.1",
        "format": "ulaw",
        "optimal_frame_size": 160,
        "ptime": 20,
        "channel_variables": {
            "DIALEDPEERNUMBER": "media_connection1/c(ulaw)",
            "MEDIA_WEBSOCKET_CONNECTION_ID": "media_connection1",
            "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "160",
        },
    }
)


def started(start: str = SLIN16_START) -> WebSocketChannelProtocol:
    proto = WebSocketChannelProtocol()
    [event] = proto.receive_text(start)
    assert isinstance(event, MediaStart)
    return proto


def test_documented_media_start() -> None:
    proto = WebSocketChannelProtocol()
    [start] = proto.receive_text(DOC_START)
    assert isinstance(start, MediaStart)
    assert start.connection_id == "e226e283-c90a-4ea9-9e37-389000b9ef47"
    assert start.channel == "WebSocket/connectionid" and start.channel_id == ""
    assert start.format is FORMATS["ulaw"] and start.optimal_frame_size == 160
    assert start.ptime_ms == 20 and start.control_format is ControlFormat.PLAIN
    assert proto.state is State.STREAMING


def test_current_plain_media_start() -> None:
    start = started().start
    assert start is not None
    assert start.channel_id == "1761245643.1" and start.format.sample_rate == 16000
    assert start.optimal_frame_size == 640


def test_json_media_start_and_commands_answer_in_json() -> None:
    proto = started(JSON_START)
    start = proto.start
    assert start is not None and start.control_format is ControlFormat.JSON
    assert start.channel_variables["MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"] == "160"
    assert json.loads(proto.flush_media()) == {"command": "FLUSH_MEDIA"}
    assert json.loads(proto.mark_media("m1")) == {"command": "MARK_MEDIA", "correlation_id": "m1"}
    [dtmf] = proto.receive_text(
        json.dumps({"event": "DTMF_END", "channel_id": "1761245643.1", "digit": "7"})
    )
    assert dtmf == DtmfEnd("7")


def test_plain_notifications() -> None:
    proto = started()
    assert proto.receive_text("DTMF_END digit:5 channel_id:1761245643.1") == [DtmfEnd("5")]
    assert proto.receive_text("MEDIA_XOFF") == [MediaXoff()] and proto.xoff
    assert proto.receive_text("MEDIA_XON") == [MediaXon()] and not proto.xoff
    assert proto.receive_text("QUEUE_DRAINED") == [QueueDrained()]
    assert proto.receive_text("MEDIA_BUFFERING_COMPLETED file-7") == [
        MediaBufferingCompleted("file-7")
    ]
    assert proto.receive_text("MEDIA_MARK_PROCESSED m2") == [MediaMarkProcessed("m2")]
    [status] = proto.receive_text(
        "STATUS channel_id:1.1 queue_length:43 xon_level:800 xoff_level:900 "
        "queue_full:false bulk_media:true media_paused:false"
    )
    assert isinstance(status, Status) and status.fields["queue_length"] == "43"
    [error] = proto.receive_text(
        "ERROR channel_id:1.1 error_text:FLUSH_MEDIA not supported in passthrough mode"
    )
    assert error == DriverError("FLUSH_MEDIA not supported in passthrough mode")
    assert proto.receive_text("HANGUP") == [Hangup()]
    assert proto.receive_text("SOMETHING_NEW key:value") == [UnknownEvent("SOMETHING_NEW")]


def test_media_both_ways() -> None:
    proto = started()
    frame = b"\x01\x00" * 320
    assert proto.receive_bytes(frame) == [Media(frame)]
    out = proto.media(b"\x00" * 640 * 200)  # 4 s: split under the 65500-byte limit
    assert all(len(m) % 640 == 0 and len(m) <= 65500 for m in out)
    assert sum(len(m) for m in out) == 640 * 200
    with pytest.raises(ValueError):
        proto.media(b"\x00" * 100)


def test_commands_in_plain_text() -> None:
    proto = started()
    assert proto.flush_media() == "FLUSH_MEDIA"
    assert proto.hangup() == "HANGUP"
    assert proto.answer() == "ANSWER" and proto.get_status() == "GET_STATUS"
    assert proto.report_queue_drained() == "REPORT_QUEUE_DRAINED" and proto.drain_requested
    proto.receive_text("QUEUE_DRAINED")
    assert not proto.drain_requested
    assert proto.mark_media("u-3") == "MARK_MEDIA u-3"


def test_nothing_goes_out_before_media_start() -> None:
    proto = WebSocketChannelProtocol()
    with pytest.raises(RuntimeError):
        proto.flush_media()
    with pytest.raises(RuntimeError):
        proto.media(b"\x00" * 640)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("MEDIA_START connection_id:x channel:y format:opus optimal_frame_size:0", "'opus'"),
        ("MEDIA_START connection_id:x channel:y", "no format"),
        ("MEDIA_START format:slin16 optimal_frame_size:641", "optimal_frame_size 641"),
        ("MEDIA_START format:slin16 optimal_frame_size:big", "must be a number"),
        ("DTMF_END digit:5", "before MEDIA_START"),
        ("media_start format:slin16", "event name"),
        ("   ", "empty"),
        ("{not json", "not JSON"),
        ("[1, 2]", "event name"),
        ('["MEDIA_START"]', "event name"),
        ('{"format": "ulaw"}', "no 'event'"),
        ('{"event": "MEDIA_START", "format": "ulaw", "channel_variables": [1]}', "object"),
    ],
)
def test_bad_control_before_start(text: str, fragment: str) -> None:
    proto = WebSocketChannelProtocol()
    with pytest.raises(ProtocolError, match=fragment):
        proto.receive_text(text)
    assert proto.state is State.FAILED


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (SLIN16_START, "second MEDIA_START"),
        ("DTMF_END digit:55", "not one of 0-9"),
        ("DTMF_END", "not one of 0-9"),
    ],
)
def test_bad_control_after_start(text: str, fragment: str) -> None:
    proto = started()
    with pytest.raises(ProtocolError, match=fragment):
        proto.receive_text(text)


def test_bad_media() -> None:
    with pytest.raises(ProtocolError, match="before MEDIA_START"):
        WebSocketChannelProtocol().receive_bytes(b"\x00" * 640)
    with pytest.raises(ProtocolError, match="whole slin16 samples"):
        started().receive_bytes(b"\x00" * 641)
    with pytest.raises(ProtocolError, match=r"1\.\.65500"):
        started().receive_bytes(b"")
    proto = started()
    with pytest.raises(ProtocolError):
        proto.receive_bytes(b"\x00" * 65502)
    with pytest.raises(ProtocolError, match="already failed"):
        proto.receive_bytes(b"\x00" * 640)


def test_formats_round_trip() -> None:
    import numpy as np

    tone = (8000 * np.sin(np.arange(160) / 3)).astype(np.int16)
    for name in ("ulaw", "alaw", "slin"):
        fmt = FORMATS[name]
        wire = fmt.encode(tone)
        assert len(wire) == fmt.frame_bytes
        assert np.max(np.abs(fmt.decode(wire).astype(int) - tone)) < 300
    assert FORMATS["slin16"].frame_bytes == 640 and FORMATS["slin48"].sample_rate == 48000
