"""AudioSocket with plain bytes: the messages Asterisk sends, and what we send back.

Message bytes follow the protocol definition (docs.asterisk.org "AudioSocket") and
Asterisk's res_audiosocket.c: kind, big-endian length, payload.
"""

from __future__ import annotations

import uuid

import pytest

from gateway.asterisk.audiosocket.protocol import (
    Audio,
    AudioSocketProtocol,
    CallId,
    Dtmf,
    Hangup,
    PeerError,
    ProtocolError,
    State,
)

CALL_UUID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")  # the docs' example


def msg(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


UUID_MSG = msg(0x01, CALL_UUID.bytes)
FRAME = bytes(range(256)) + bytes(64)  # 320 bytes: 20 ms of 8 kHz slin


def started() -> AudioSocketProtocol:
    proto = AudioSocketProtocol()
    assert proto.receive_data(UUID_MSG) == [CallId(CALL_UUID)]
    return proto


def test_uuid_then_audio_dtmf_and_hangup() -> None:
    proto = started()
    assert proto.state is State.STREAMING and proto.call_uuid == CALL_UUID
    data = msg(0x10, FRAME) + msg(0x03, b"5") + msg(0x00)
    assert proto.receive_data(data) == [Audio(FRAME), Dtmf("5"), Hangup()]
    assert proto.state is State.CLOSED
    assert proto.receive_data(msg(0x10, FRAME)) == []  # after a hangup: ignored


def test_messages_split_anywhere_are_reassembled() -> None:
    proto = AudioSocketProtocol()
    data = UUID_MSG + msg(0x10, FRAME) + msg(0x10, FRAME)
    events = []
    for i in range(0, len(data), 7):
        events += proto.receive_data(data[i : i + 7])
    assert events == [CallId(CALL_UUID), Audio(FRAME), Audio(FRAME)]


def test_asterisk_error_codes() -> None:
    error = started().receive_data(msg(0xFF, b"\x01"))[0]
    assert isinstance(error, PeerError) and error.caller_hung_up
    assert "hangup of calling party" in error.describe()
    error = started().receive_data(msg(0xFF, b"\x02"))[0]
    assert isinstance(error, PeerError) and not error.caller_hung_up
    assert "frame forwarding" in error.describe()
    assert started().receive_data(msg(0xFF)) == [PeerError(b"")]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (msg(0x10, FRAME), r"UUID message \(kind 0x01\) first"),
        (msg(0x01, b"\x00" * 15), "expected 16"),
        (msg(0x04, b""), "expected the UUID"),
    ],
)
def test_bad_first_message(data: bytes, fragment: str) -> None:
    proto = AudioSocketProtocol()
    with pytest.raises(ProtocolError, match=fragment):
        proto.receive_data(data)
    assert proto.state is State.FAILED
    with pytest.raises(ProtocolError, match="already failed"):
        proto.receive_data(UUID_MSG)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (msg(0x10, b"\x00" * 321), "whole 16-bit samples"),
        (msg(0x10, b""), "whole 16-bit samples"),
        (b"\x10\xff\xff", "at most 16000"),  # refused from the header alone
        (UUID_MSG, "second UUID"),
        (msg(0x03, b"x"), "not one of 0-9"),
        (msg(0x03, b"12"), "expected 1"),
        (msg(0x00, b"\x00"), "expected 0"),
        (msg(0x12, FRAME), "0x12 .* not supported"),
        (msg(0x42, b""), "unknown message kind 0x42"),
    ],
)
def test_bad_message_after_the_uuid(data: bytes, fragment: str) -> None:
    proto = started()
    with pytest.raises(ProtocolError, match=fragment):
        proto.receive_data(data)


def test_what_we_send() -> None:
    assert AudioSocketProtocol.hangup() == b"\x00\x00\x00"
    assert AudioSocketProtocol.audio(FRAME) == b"\x10\x01\x40" + FRAME
    with pytest.raises(ValueError):
        AudioSocketProtocol.audio(b"\x00" * 3)


def test_events_before_a_bad_message_travel_with_the_error() -> None:
    proto = AudioSocketProtocol()
    with pytest.raises(ProtocolError) as caught:
        proto.receive_data(UUID_MSG + msg(0x10, FRAME) + msg(0x42))
    assert caught.value.events == [CallId(CALL_UUID), Audio(FRAME)]
    assert proto.call_uuid == CALL_UUID and proto.state is State.FAILED
