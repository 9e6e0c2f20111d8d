"""The carrier's side of a media stream: what Twilio sends, and parsing what it receives.

Used by the simulated callee and the ``voxline call`` test caller, so they
speak to ``/media-stream`` exactly as a carrier does. Sans-I/O like
``media_stream``: strings in, strings and events out.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from gateway.twilio.media_stream import FRAME_BYTES, MULAW_ENCODING, MULAW_RATE


class ServerMessageError(Exception):
    """The server sent something a carrier would reject."""


@dataclass(frozen=True)
class PlayMedia:
    payload: bytes  # mu-law 8 kHz


@dataclass(frozen=True)
class PlayMark:
    name: str


@dataclass(frozen=True)
class ClearBuffer:
    pass


ServerEvent = PlayMedia | PlayMark | ClearBuffer


@dataclass
class CarrierStream:
    stream_sid: str
    call_sid: str
    account_sid: str = "AC" + "0" * 32
    sequence: int = 0
    chunk: int = 0
    protocol_errors: list[str] = field(default_factory=list)

    def _next_sequence(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    def connected(self) -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self, custom_parameters: dict[str, str]) -> str:
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": self._next_sequence(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {
                        "encoding": MULAW_ENCODING,
                        "sampleRate": MULAW_RATE,
                        "channels": 1,
                    },
                    "customParameters": custom_parameters,
                },
                "streamSid": self.stream_sid,
            }
        )

    def media(self, payload: bytes, timestamp_ms: int) -> str:
        self.chunk += 1
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_sequence(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self.chunk),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(payload).decode(),
                },
                "streamSid": self.stream_sid,
            }
        )

    def mark(self, name: str) -> str:
        return json.dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def dtmf(self, digit: str) -> str:
        return json.dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_sequence(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def stop(self) -> str:
        return json.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    def receive_text(self, text: str) -> ServerEvent:
        """Parse one message from the server, checking it as a carrier would."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ServerMessageError(f"not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise ServerMessageError("not a JSON object")
        if msg.get("streamSid") != self.stream_sid:
            raise ServerMessageError(f"streamSid {msg.get('streamSid')!r} is not this stream's")
        event = msg.get("event")
        if event == "media":
            try:
                payload = base64.b64decode(msg["media"]["payload"], validate=True)
            except (KeyError, TypeError, binascii.Error, ValueError) as exc:
                raise ServerMessageError(f"bad media message: {exc}") from None
            if not payload or len(payload) % FRAME_BYTES:
                raise ServerMessageError(f"media payload of {len(payload)} bytes")
            return PlayMedia(payload)
        if event == "mark":
            try:
                return PlayMark(str(msg["mark"]["name"]))
            except (KeyError, TypeError):
                raise ServerMessageError("mark without mark.name") from None
        if event == "clear":
            return ClearBuffer()
        raise ServerMessageError(f"unknown event {event!r}")
