"""Exotel's Voicebot applet stream (bidirectional) as a sans-I/O dialect.

Exotel connects to the applet's WebSocket URL and sends JSON text with snake_case
fields: ``connected``; ``start`` (``stream_sid``, ``start.call_sid``, ``from``, ``to``,
``custom_parameters`` — the URL's query parameters —, ``media_format`` {``encoding``,
``sample_rate`` (a string, "8000" by default), ``bit_rate``}); ``media`` (``chunk``,
``timestamp``, ``payload``: base64 raw 16-bit little-endian PCM); ``dtmf``
(``dtmf.digit``); ``mark`` (``mark.name``, once the audio before it has played);
``clear`` (acknowledging ours); ``stop`` (``stop.reason``).

Back to Exotel: ``media`` {``stream_sid``, ``media.payload``}, ``mark``, ``clear``.
Exotel plays outbound audio in chunks that are a multiple of 320 bytes and at least
100 ms long, so the agent's audio goes out 100 ms at a time (the last chunk of an
utterance zero-padded to a whole one).
"""

from __future__ import annotations

import json

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
    StreamStopped,
    b64,
    b64_payload,
    digit_of,
    int_field,
    obj,
    parse_json,
    text_field,
)

RATES = frozenset({8000, 16000, 24000})
CHUNK_S = 0.1  # 100 ms: 1600 bytes at 8 kHz, five times 320


class ExotelMediaStream:
    marks = True

    def __init__(self) -> None:
        self.started: StreamStarted | None = None

    @property
    def chunk_samples(self) -> int:
        rate = self.started.sample_rate if self.started else 8000
        return int(rate * CHUNK_S)

    def receive_bytes(self, data: bytes) -> list[StreamEvent]:
        raise ProtocolError("Exotel sends JSON text messages, not binary")

    def receive_text(self, text: str) -> list[StreamEvent]:
        message = parse_json(text)
        event = message.get("event")
        if event == "connected":
            return [Ignored("connected")]
        if event == "start":
            return [self._start(message)]
        if self.started is None:
            raise ProtocolError(f"{event!r} before 'start'")
        if event == "media":
            payload = b64_payload(obj(message, "media"), Codec.L16_LE, self.started.sample_rate)
            return [CallerAudio(Codec.L16_LE.decode(payload))]
        if event == "dtmf":
            return [Digit(digit_of(obj(message, "dtmf").get("digit")))]
        if event == "mark":
            return [Played(text_field(obj(message, "mark"), "name"))]
        if event == "clear":
            return [Cleared()]
        if event == "stop":
            stop = message.get("stop")
            reason = stop.get("reason") if isinstance(stop, dict) else None
            return [StreamStopped(f"exotel stop: {reason}" if isinstance(reason, str) else "")]
        raise ProtocolError(f"unknown event {event!r}")

    def _start(self, message: dict) -> StreamStarted:
        if self.started is not None:
            raise ProtocolError("a second 'start'")
        start = obj(message, "start")
        fmt = start.get("media_format")
        rate = int_field(fmt, "sample_rate", required=False) if isinstance(fmt, dict) else None
        rate = rate or 8000
        if rate not in RATES:
            raise ProtocolError(f"media_format.sample_rate {rate} is not supported")
        custom = start.get("custom_parameters")
        custom = (
            {k: v for k, v in custom.items() if isinstance(v, str)}
            if isinstance(custom, dict)
            else {}
        )
        self.started = StreamStarted(
            stream_id=text_field(message, "stream_sid"),
            carrier_call_id=text_field(start, "call_sid"),
            codec=Codec.L16_LE,
            sample_rate=rate,
            token=custom.get("token"),
            from_number=str(start.get("from") or "")[:64],
            to_number=str(start.get("to") or "")[:64],
            custom=custom,
        )
        return self.started

    def media(self, pcm: np.ndarray) -> list[Outgoing]:
        payload = b64(Codec.L16_LE.encode(pcm))
        return [
            json.dumps({"event": "media", "stream_sid": self._sid, "media": {"payload": payload}})
        ]

    def clear(self) -> list[Outgoing]:
        return [json.dumps({"event": "clear", "stream_sid": self._sid})]

    def mark(self, name: str) -> list[Outgoing]:
        return [json.dumps({"event": "mark", "stream_sid": self._sid, "mark": {"name": name}})]

    @property
    def _sid(self) -> str:
        return self.started.stream_id if self.started else ""
