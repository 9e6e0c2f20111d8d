"""Vonage Voice API WebSockets (NCCO ``connect`` to a ``websocket`` endpoint) as a
sans-I/O dialect.

Vonage opens the WebSocket named in the NCCO and first sends one TEXT message,
``{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", ...}``,
carrying the NCCO endpoint's ``headers`` as top-level fields (which is where our stream
token and Vonage's call ``uuid`` travel). Then the caller's audio arrives as BINARY
messages of 20 ms of 16-bit little-endian linear PCM (640 bytes at 16 kHz, 320 at
8 kHz); TEXT messages are events: ``websocket:dtmf`` (``digit``),
``websocket:notify`` (the ``payload`` of a ``notify`` we sent, once the audio before it
has played), ``websocket:cleared``.

Back to Vonage: BINARY frames of exactly 20 ms at the same rate, ``{"action":
"clear"}`` to drop what is buffered, ``{"action": "notify", "payload": {...}}`` as a mark.
"""

from __future__ import annotations

import json
import re

import numpy as np

from gateway.bridge.stream_dialect import (
    CallerAudio,
    Cleared,
    Codec,
    Digit,
    Ignored,
    Outgoing,
    Played,
    ProtocolError,
    StreamEvent,
    StreamStarted,
    digit_of,
    parse_json,
)

CONTENT_TYPE = re.compile(r"audio/l16;\s*rate=(8000|16000)")
TOKEN_HEADER = "token"
CALL_UUID_HEADER = "vonage_uuid"  # the call's uuid, put in the headers by our NCCO
_RESERVED = frozenset({"event", "content-type", TOKEN_HEADER, CALL_UUID_HEADER})


class VonageMediaStream:
    marks = True

    def __init__(self) -> None:
        self.started: StreamStarted | None = None

    @property
    def chunk_samples(self) -> int:
        rate = self.started.sample_rate if self.started else 16000
        return rate // 50  # Vonage takes exactly 20 ms per frame

    def receive_bytes(self, data: bytes) -> list[StreamEvent]:
        if self.started is None:
            raise ProtocolError("audio before 'websocket:connected'")
        step = self.chunk_samples * 2
        if not data or len(data) % step or len(data) > 50 * step:
            raise ProtocolError(f"audio frame of {len(data)} bytes is not whole 20 ms frames")
        return [CallerAudio(Codec.L16_LE.decode(data))]

    def receive_text(self, text: str) -> list[StreamEvent]:
        message = parse_json(text)
        event = message.get("event")
        if event == "websocket:connected":
            return [self._connected(message)]
        if self.started is None:
            raise ProtocolError(f"{event!r} before 'websocket:connected'")
        if event == "websocket:dtmf":
            return [Digit(digit_of(message.get("digit")))]
        if event == "websocket:notify":
            payload = message.get("payload")
            name = payload.get("name") if isinstance(payload, dict) else None
            if not isinstance(name, str):
                raise ProtocolError("websocket:notify without payload.name")
            return [Played(name)]
        if event == "websocket:cleared":
            return [Cleared()]
        if isinstance(event, str) and event.startswith("websocket:"):
            return [Ignored(event)]  # Vonage adds events; a call needs none of the others
        raise ProtocolError(f"unknown event {event!r}")

    def _connected(self, message: dict) -> StreamStarted:
        if self.started is not None:
            raise ProtocolError("a second 'websocket:connected'")
        content_type = message.get("content-type")
        match = CONTENT_TYPE.fullmatch(content_type) if isinstance(content_type, str) else None
        if match is None:
            raise ProtocolError(f"content-type {content_type!r} is not audio/l16;rate=8000|16000")
        token = message.get(TOKEN_HEADER)
        call_uuid = message.get(CALL_UUID_HEADER)
        self.started = StreamStarted(
            stream_id="",
            carrier_call_id=call_uuid if isinstance(call_uuid, str) else "",
            codec=Codec.L16_LE,
            sample_rate=int(match.group(1)),
            token=token if isinstance(token, str) else None,
            custom={k: v for k, v in message.items() if isinstance(v, str) and k not in _RESERVED},
        )
        return self.started

    def media(self, pcm: np.ndarray) -> list[Outgoing]:
        return [Codec.L16_LE.encode(pcm)]

    def clear(self) -> list[Outgoing]:
        return [json.dumps({"action": "clear"})]

    def mark(self, name: str) -> list[Outgoing]:
        return [json.dumps({"action": "notify", "payload": {"name": name}})]
