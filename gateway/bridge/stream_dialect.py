"""What a carrier's media-stream dialect says, in one vocabulary every carrier shares.

Telnyx, Plivo, Vonage and Exotel each stream a call over a WebSocket in their own
JSON (or binary) messages, but a call needs the same few things from all of them:
the stream started (which call, which codec, the stream token), the caller's audio,
a key pressed, a mark played, the stream stopped. Each carrier's sans-I/O module
(``gateway/<carrier>/media_stream.py``) turns its messages into these events and
builds its own messages for the agent's audio, a barge-in ``clear`` and a mark, so
``gateway.bridge.carrier_call`` pumps every one of them with the same code.

Audio crosses this boundary as int16 numpy samples at the wire rate: the dialect
owns its codec (mu-law, little- or big-endian L16), the call owns resampling.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from voice_core.audio import alaw, mulaw

DTMF_DIGITS = frozenset("0123456789*#ABCD")
# A media message carries 20 ms; a carrier that batches may send a few frames at once,
# but more than a second in one message is not a live stream.
MAX_MEDIA_SECONDS = 1.0
# Control messages are a few hundred bytes; anything huge is not a carrier.
MAX_TEXT_CHARS = 64 * 1024


class ProtocolError(Exception):
    """A message that breaks the dialect; it ends that one call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Codec(StrEnum):
    MULAW = "mulaw"  # G.711 mu-law, one byte per sample
    ALAW = "alaw"  # G.711 A-law, one byte per sample
    L16_LE = "l16le"  # 16-bit linear PCM, little-endian (Vonage, Plivo, Exotel)
    L16_BE = "l16be"  # 16-bit linear PCM, network byte order (Telnyx's L16, RFC 2586)

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self in (Codec.MULAW, Codec.ALAW) else 2

    def decode(self, data: bytes) -> np.ndarray:
        if self is Codec.MULAW:
            return mulaw.decode(data)
        if self is Codec.ALAW:
            return alaw.decode(data)
        if len(data) % 2:
            raise ProtocolError(f"L16 payload of {len(data)} bytes is not whole samples")
        dtype = "<i2" if self is Codec.L16_LE else ">i2"
        return np.frombuffer(data, dtype=dtype).astype(np.int16)

    def encode(self, samples: np.ndarray) -> bytes:
        if self is Codec.MULAW:
            return mulaw.encode(samples)
        if self is Codec.ALAW:
            return alaw.encode(samples)
        dtype = "<i2" if self is Codec.L16_LE else ">i2"
        return samples.astype(dtype).tobytes()


# ------------------------------------------------------------------ events


@dataclass(frozen=True)
class StreamStarted:
    stream_id: str
    carrier_call_id: str
    codec: Codec
    sample_rate: int
    token: str | None = None  # the stream token, where the dialect carries it in-band
    from_number: str = ""
    to_number: str = ""
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallerAudio:
    pcm: np.ndarray  # int16 at the stream's sample rate
    timestamp_ms: int | None = None  # since the stream started, on the carrier's clock


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class Played:
    """The carrier played everything sent before the mark called ``name``."""

    name: str


@dataclass(frozen=True)
class Cleared:
    """The carrier confirms a ``clear``: nothing queued is left."""


@dataclass(frozen=True)
class StreamStopped:
    reason: str = ""


@dataclass(frozen=True)
class Ignored:
    """A message the dialect knows and a call does not need (connected, errors logged)."""

    kind: str
    detail: str = ""


StreamEvent = StreamStarted | CallerAudio | Digit | Played | Cleared | StreamStopped | Ignored
Outgoing = str | bytes  # a TEXT or a BINARY WebSocket message


class StreamDialect(Protocol):
    """One stream's protocol state, carrier side in, carrier messages out."""

    marks: bool  # the carrier echoes marks once the audio before them has played
    started: StreamStarted | None

    def receive_text(self, text: str) -> list[StreamEvent]: ...

    def receive_bytes(self, data: bytes) -> list[StreamEvent]: ...

    def media(self, pcm: np.ndarray) -> list[Outgoing]:
        """Messages that play ``pcm`` (int16 at the stream's rate, one chunk)."""
        ...

    def clear(self) -> list[Outgoing]: ...

    def mark(self, name: str) -> list[Outgoing]: ...

    @property
    def chunk_samples(self) -> int:
        """How many samples each ``media`` call should carry (the dialect's frame)."""
        ...


# ------------------------------------------------------------------ parsing helpers


def parse_json(text: str) -> dict[str, Any]:
    """A carrier's text message as a JSON object, or a ``ProtocolError`` saying why not."""
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"text message over {MAX_TEXT_CHARS} characters")
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("message is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


def obj(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if not isinstance(value, dict):
        raise ProtocolError(f"'{name}' must be an object")
    return value


def text_field(message: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = message.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"'{name}' must be a non-empty string")
    return value


def int_field(message: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    """Carriers send numbers as numbers or decimal strings; both are accepted."""
    value = message.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool):
        raise ProtocolError(f"'{name}' must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ProtocolError(f"'{name}' must be an integer")


def b64_payload(media: dict[str, Any], codec: Codec, rate: int, name: str = "payload") -> bytes:
    """A base64 media payload, bounded and whole samples."""
    value = media.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"media.{name} must be a base64 string")
    if len(value) > 4 * (MAX_MEDIA_SECONDS * rate * codec.bytes_per_sample) / 3 + 4:
        raise ProtocolError(f"media.{name} carries over {MAX_MEDIA_SECONDS:g} s of audio")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"media.{name} is not valid base64") from None


def digit_of(value: object) -> str:
    if not isinstance(value, str) or value not in DTMF_DIGITS:
        raise ProtocolError(f"dtmf digit {value!r} is not one of 0-9 * # A-D")
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
