"""Plivo Audio Streams (``<Stream bidirectional="true">``) as a sans-I/O dialect.

Plivo opens the WebSocket named in the answer XML and sends JSON text:

- ``start``: ``start.callId``, ``start.streamId``, ``start.tracks``,
  ``start.mediaFormat`` {``encoding``: ``audio/x-mulaw`` | ``audio/x-l16``,
  ``sampleRate``}, and ``extra_headers`` (the XML's ``extraHeaders``);
- ``media``: ``media.track``, ``timestamp`` (Unix ms), ``chunk``, ``payload`` (base64);
- ``dtmf`` (``dtmf.digit``); ``playedStream`` (``name``: a ``checkpoint`` we sent has
  been reached: everything before it played; Plivo's support pages call it ``played``,
  and both are taken); ``clearedAudio`` (after ``clearAudio``);
  ``stop`` if it says goodbye before closing.

Back to Plivo: ``playAudio`` {``media``: {``contentType``, ``sampleRate``,
``payload``}}, ``checkpoint`` {``streamId``, ``name``}, ``clearAudio`` {``streamId``}.
L16 is taken as little-endian 16-bit samples (Plivo's reference does not say; the
default stream is mu-law, which has no byte order).
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

ENCODINGS = {"audio/x-mulaw": Codec.MULAW, "audio/x-l16": Codec.L16_LE}
CONTENT_TYPES = {Codec.MULAW: "audio/x-mulaw", Codec.L16_LE: "audio/x-l16"}
RATES = frozenset({8000, 16000})
_MAX_EXTRA_HEADERS = 32


class PlivoMediaStream:
    marks = True

    def __init__(self) -> None:
        self.started: StreamStarted | None = None

    @property
    def chunk_samples(self) -> int:
        rate = self.started.sample_rate if self.started else 8000
        return rate // 50  # 20 ms

    # ---------------------------------------------------------------- Plivo -> us

    def receive_bytes(self, data: bytes) -> list[StreamEvent]:
        raise ProtocolError("Plivo sends JSON text messages, not binary")

    def receive_text(self, text: str) -> list[StreamEvent]:
        message = parse_json(text)
        event = message.get("event")
        if event == "start":
            return [self._start(message)]
        if self.started is None:
            raise ProtocolError(f"'{event}' before 'start'")
        if event == "media":
            media = obj(message, "media")
            if media.get("track", "inbound") != "inbound":
                return []
            codec, rate = self.started.codec, self.started.sample_rate
            payload = b64_payload(media, codec, rate)
            int_field(media, "chunk", required=False)
            return [CallerAudio(codec.decode(payload))]
        if event == "dtmf":
            return [Digit(digit_of(obj(message, "dtmf").get("digit")))]
        if event in ("playedStream", "played"):
            return [Played(text_field(message, "name"))]
        if event == "clearedAudio":
            return [Cleared()]
        if event == "stop":
            return [StreamStopped("plivo stop")]
        if event in ("error", "connected"):
            return [Ignored(event, json.dumps(message)[:200])]
        raise ProtocolError(f"unknown event {event!r}")

    def _start(self, message: dict) -> StreamStarted:
        if self.started is not None:
            raise ProtocolError("a second 'start'")
        start = obj(message, "start")
        fmt = obj(start, "mediaFormat")
        encoding = fmt.get("encoding")
        if encoding not in ENCODINGS:
            raise ProtocolError(f"mediaFormat.encoding {encoding!r} is not supported")
        rate = int_field(fmt, "sampleRate")
        if rate not in RATES or (encoding == "audio/x-mulaw" and rate != 8000):
            raise ProtocolError(f"mediaFormat.sampleRate {rate!r} is not supported")
        self.started = StreamStarted(
            stream_id=text_field(start, "streamId"),
            carrier_call_id=text_field(start, "callId"),
            codec=ENCODINGS[encoding],
            sample_rate=rate,
            custom=_extra_headers(message.get("extra_headers")),
        )
        return self.started

    # ---------------------------------------------------------------- us -> Plivo

    def media(self, pcm: np.ndarray) -> list[Outgoing]:
        assert self.started is not None
        codec = self.started.codec
        media = {
            "contentType": CONTENT_TYPES[codec],
            "sampleRate": self.started.sample_rate,
            "payload": b64(codec.encode(pcm)),
        }
        return [json.dumps({"event": "playAudio", "media": media})]

    def clear(self) -> list[Outgoing]:
        return [json.dumps({"event": "clearAudio", "streamId": self._stream_id})]

    def mark(self, name: str) -> list[Outgoing]:
        return [json.dumps({"event": "checkpoint", "streamId": self._stream_id, "name": name})]

    @property
    def _stream_id(self) -> str:
        return self.started.stream_id if self.started else ""


def _extra_headers(value: object) -> dict[str, str]:
    """``a=1,b=2`` (the XML's format; Plivo's examples also show ``;``) as a dict."""
    if not isinstance(value, str):
        return {}
    out: dict[str, str] = {}
    for item in value.replace(";", ",").split(",")[:_MAX_EXTRA_HEADERS]:
        name, sep, val = item.partition("=")
        if sep and name.strip():
            out[name.strip()] = val.strip()
    return out
