"""Telnyx media streaming (Call Control, bidirectional RTP mode) as a sans-I/O dialect.

Telnyx opens the WebSocket to the ``stream_url`` we gave in the ``answer`` (or
``streaming_start``) command and sends, as JSON text:

- ``connected`` (``version``; with ``stream_auth_token`` set, that token as
  ``x-telnyx-streaming-auth-token``, also sent as an upgrade header),
- ``start``: ``stream_id``, ``start.call_control_id``, ``from``/``to``,
  ``custom_parameters``, ``media_format`` {``encoding``: PCMU | PCMA | L16,
  ``sample_rate``: 8000 | 16000, ``channels``},
- ``media``: ``media.track``, ``chunk``, ``timestamp``, ``payload`` (base64 RTP
  payload without the RTP header; L16 in network byte order),
- ``dtmf`` (``dtmf.digit``), ``mark`` (``mark.name``, once what preceded it has
  played), ``error`` (``payload.code``/``title``/``detail``), ``stop``.

Numbers may travel as decimal strings. Media frame order is not guaranteed:
frames are reordered by ``chunk`` in a small window (``REORDER_WINDOW``); one that
arrives after the window moved past it is dropped rather than played late.

Back to Telnyx (only heard in bidirectional RTP mode; the default mode is one-way and
Telnyx drops what we send, which is why the answer asks for ``rtp`` explicitly):
``media`` {``payload``} of 20 ms, ``clear``, ``mark`` {``name``}.
"""

from __future__ import annotations

import json

import numpy as np

from gateway.bridge.stream_dialect import (
    CallerAudio,
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

AUTH_TOKEN_FIELD = "x-telnyx-streaming-auth-token"
ENCODINGS = {"PCMU": Codec.MULAW, "PCMA": Codec.ALAW, "L16": Codec.L16_BE}
RATES = frozenset({8000, 16000})
# Frames held while waiting for a missing one: 3 x 20 ms. Past it the gap is skipped
# (a lost packet), so reordering never delays the stream by more than this.
REORDER_WINDOW = 3


class TelnyxMediaStream:
    marks = True

    def __init__(self) -> None:
        self.started: StreamStarted | None = None
        self.auth_token: str | None = None  # from ``connected``
        self._next_chunk: int | None = None
        self._held: dict[int, CallerAudio] = {}
        self.dropped_late = 0  # frames that came after their turn (for tests and logs)

    @property
    def chunk_samples(self) -> int:
        rate = self.started.sample_rate if self.started else 8000
        return rate // 50  # 20 ms

    # ---------------------------------------------------------------- Telnyx -> us

    def receive_bytes(self, data: bytes) -> list[StreamEvent]:
        raise ProtocolError("Telnyx sends JSON text messages, not binary")

    def receive_text(self, text: str) -> list[StreamEvent]:
        message = parse_json(text)
        event = message.get("event")
        if event == "connected":
            token = message.get(AUTH_TOKEN_FIELD)
            self.auth_token = token if isinstance(token, str) else None
            return [Ignored("connected")]
        if event == "start":
            return [self._start(message)]
        if self.started is None:
            raise ProtocolError(f"'{event}' before 'start'")
        if event == "media":
            return self._media(obj(message, "media"))
        if event == "dtmf":
            return [Digit(digit_of(obj(message, "dtmf").get("digit")))]
        if event == "mark":
            return [Played(text_field(obj(message, "mark"), "name"))]
        if event == "stop":
            return [StreamStopped("telnyx stop")]
        if event == "error":
            payload = message.get("payload")
            detail = json.dumps(payload)[:200] if payload is not None else ""
            return [Ignored("error", detail)]
        raise ProtocolError(f"unknown event {event!r}")

    def _start(self, message: dict) -> StreamStarted:
        if self.started is not None:
            raise ProtocolError("a second 'start'")
        start = obj(message, "start")
        fmt = obj(start, "media_format")
        encoding = fmt.get("encoding")
        if encoding not in ENCODINGS:
            raise ProtocolError(f"media_format.encoding {encoding!r} is not PCMU, PCMA or L16")
        rate = int_field(fmt, "sample_rate")
        if rate not in RATES or (encoding != "L16" and rate != 8000):
            raise ProtocolError(f"media_format.sample_rate {rate!r} is not supported")
        channels = int_field(fmt, "channels", required=False)
        if channels not in (None, 1):
            raise ProtocolError(f"media_format.channels {channels} is not mono")
        custom = start.get("custom_parameters")
        self.started = StreamStarted(
            stream_id=text_field(message, "stream_id"),
            carrier_call_id=text_field(start, "call_control_id"),
            codec=ENCODINGS[encoding],
            sample_rate=rate,
            token=self.auth_token,
            from_number=_string(start.get("from")),
            to_number=_string(start.get("to")),
            custom={k: v for k, v in custom.items() if isinstance(v, str)}
            if isinstance(custom, dict)
            else {},
        )
        return self.started

    def _media(self, media: dict) -> list[StreamEvent]:
        assert self.started is not None
        track = media.get("track", "inbound")
        codec, rate = self.started.codec, self.started.sample_rate
        payload = b64_payload(media, codec, rate)
        chunk = int_field(media, "chunk", required=False)
        timestamp = int_field(media, "timestamp", required=False)
        if track != "inbound":
            return []  # the agent's own audio (both_tracks): never fed back to the engine
        audio = CallerAudio(codec.decode(payload), timestamp)
        if chunk is None:
            return [audio]
        return list(self._reorder(chunk, audio))

    def _reorder(self, chunk: int, audio: CallerAudio) -> list[CallerAudio]:
        if self._next_chunk is None:
            self._next_chunk = chunk
        if chunk < self._next_chunk or chunk in self._held:
            self.dropped_late += 1
            return []
        self._held[chunk] = audio
        out: list[CallerAudio] = []
        while True:
            while self._next_chunk in self._held:
                out.append(self._held.pop(self._next_chunk))
                self._next_chunk += 1
            if len(self._held) <= REORDER_WINDOW:
                return out
            self._next_chunk = min(self._held)  # the missing frame is lost: skip it

    # ---------------------------------------------------------------- us -> Telnyx

    def media(self, pcm: np.ndarray) -> list[Outgoing]:
        assert self.started is not None
        payload = b64(self.started.codec.encode(pcm))
        return [json.dumps({"event": "media", "media": {"payload": payload}})]

    def clear(self) -> list[Outgoing]:
        return [json.dumps({"event": "clear"})]

    def mark(self, name: str) -> list[Outgoing]:
        return [json.dumps({"event": "mark", "mark": {"name": name}})]


def _string(value: object) -> str:
    return value[:64] if isinstance(value, str) else ""
