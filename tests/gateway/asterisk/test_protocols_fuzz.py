"""Whatever Asterisk (or anyone who reaches the port) sends over AudioSocket or the
WebSocket channel, the sans-I/O protocol answers with events or its own ProtocolError."""

from __future__ import annotations

import struct

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.asterisk.audiosocket import protocol as audiosocket
from gateway.asterisk.websocket_channel import protocol as channel
from gateway.asterisk.websocket_channel.media_format import FORMATS
from tests.gateway.fuzz import FUZZ, NUMBERISH, any_text, dumps, json_values

KINDS = [0x00, 0x01, 0x03, 0x10, 0x11, 0x20, 0xFF]
# Messages with a real kind and a length that may or may not match their payload.
audiosocket_messages = st.builds(
    lambda kind, length, payload: struct.pack(">BH", kind, length) + payload,
    st.sampled_from(KINDS) | st.integers(0, 255),
    st.sampled_from([0, 1, 2, 16, 320, 16000, 16001, 65535]) | st.integers(0, 65535),
    st.binary(max_size=400),
)
uuid_first = st.just(struct.pack(">BH", 0x01, 16) + bytes(range(16)))


@FUZZ
@given(st.lists(uuid_first | audiosocket_messages | st.binary(max_size=64), max_size=10))
def test_any_bytes_in_any_chunks_raise_only_audiosocket_protocol_errors(
    chunks: list[bytes],
) -> None:
    proto = audiosocket.AudioSocketProtocol()
    for chunk in chunks:
        try:
            proto.receive_data(chunk)
        except audiosocket.ProtocolError:
            pass


names = st.sampled_from(
    [
        "MEDIA_START",
        "DTMF_END",
        "MEDIA_XOFF",
        "MEDIA_XON",
        "QUEUE_DRAINED",
        "STATUS",
        "ERROR",
        "HANGUP",
        "MEDIA_MARK_PROCESSED",
        "lower",
    ]
)
values = NUMBERISH | st.sampled_from(sorted(FORMATS)) | st.text(max_size=6)
plain_messages = st.builds(
    lambda name, fields, bare: " ".join([name, *(f"{k}:{v}" for k, v in fields), *bare]),
    names,
    st.lists(
        st.tuples(
            st.sampled_from(
                ["format", "optimal_frame_size", "ptime", "digit", "error_text", "channel_id"]
            ),
            values,
        ),
        max_size=4,
    ),
    st.lists(st.text(max_size=6), max_size=2),
)
json_messages = st.fixed_dictionaries(
    {"event": names | json_values},
    optional={
        "format": values | json_values,
        "optimal_frame_size": values | json_values,
        "ptime": values | json_values,
        "digit": values | json_values,
        "channel_variables": json_values,
        "correlation_id": json_values,
    },
).map(dumps)
frames = st.lists(plain_messages | json_messages | any_text | st.binary(max_size=400), max_size=8)


@FUZZ
@example(["MEDIA_START format:ulaw optimal_frame_size:\u00b2"])  # isdigit() yet not int()
@example(['{"event": "MEDIA_START", "ptime": ' + "1" * 5000 + "}"])
@given(frames)
def test_any_frames_raise_only_websocket_channel_protocol_errors(
    frames: list[str | bytes],
) -> None:
    proto = channel.WebSocketChannelProtocol()
    for frame in frames:
        try:
            if isinstance(frame, bytes):
                proto.receive_bytes(frame)
            else:
                proto.receive_text(frame)
        except channel.ProtocolError:
            pass
