"""Asterisk AudioSocket as a sans-I/O protocol: bytes in, typed events out.

AudioSocket is raw TCP. Asterisk (the ``AudioSocket()`` dialplan application, the
``AudioSocket/`` channel, or ARI ``externalMedia`` with ``transport=tcp,
encapsulation=audiosocket``) connects to us and every message is a 3-byte header and a
payload: one byte of kind, two bytes of payload length (big-endian), then the payload.

Kinds, as documented ("AudioSocket", docs.asterisk.org/Configuration/Channel-Drivers/
AudioSocket; the protocol definition in github.com/CyCoreSystems/audiosocket) and as
Asterisk's ``res/res_audiosocket.c`` and ``include/asterisk/res_audiosocket.h`` send
and read them:

- ``0x00`` hangup (no payload); closing the socket is "also sufficient", and is what
  Asterisk itself does when the caller hangs up;
- ``0x01`` the call's UUID, 16 bytes (binary form): always the first message;
- ``0x03`` one DTMF digit, 1 byte of ASCII;
- ``0x10`` audio: signed linear 16-bit, 8 kHz, mono, little-endian; Asterisk sends a
  frame per packet (20 ms = 320 bytes) and plays what it receives at once, so the
  application paces what it sends and there is no flush: barge-in means stopping;
- ``0xff`` an error; the optional payload is an error code (Asterisk's: ``0x01``
  hangup of calling party, ``0x02`` frame forwarding error, ``0x04`` memory error).

Newer Asterisk versions add kinds above 0x10 for higher sample rates, but their
numbering differs between releases (``0x11`` is slin16 in one header and 12 kHz in
another); this module refuses them by name rather than guess a rate. Dial with
``AudioSocket()`` or ``c(slin)`` for the 8 kHz stream.

``AudioSocketProtocol`` is our (the server's) side: ``receive_data`` takes whatever
bytes the socket delivered (messages may arrive split or several at once) and returns
events, or raises ``ProtocolError`` naming what was wrong; ``audio`` and ``hangup``
build what we send.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from enum import Enum

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
HIGHER_RATE_KINDS = range(0x11, 0x19)

HEADER = struct.Struct(">BH")
SAMPLE_RATE = 8000
FRAME_BYTES = 320  # 20 ms of 16-bit samples at 8 kHz
# Asterisk sends one frame (20 ms, or its ptime) per message; a second of audio in one
# message is not a live call, and waiting for it would hold 64 KiB per connection.
MAX_AUDIO_BYTES = SAMPLE_RATE * 2
MAX_ERROR_BYTES = 256
DTMF_DIGITS = frozenset("0123456789*#ABCD")

ASTERISK_ERRORS = {0x01: "hangup of calling party", 0x02: "frame forwarding", 0x04: "memory"}


class ProtocolError(Exception):
    """Bytes that break the protocol; they end that one connection.

    ``events`` are those parsed from the same bytes before the bad message (a UUID and
    a broken message can arrive in one read): the caller handles them, then ends."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.events: list[AudioSocketEvent] = []


@dataclass(frozen=True)
class CallId:
    uuid: uuid.UUID


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # signed 16-bit little-endian, 8 kHz mono


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class PeerError:
    code: bytes  # empty when Asterisk sent none

    @property
    def caller_hung_up(self) -> bool:
        return bool(self.code) and self.code[0] & 0x01 == 0x01

    def describe(self) -> str:
        if not self.code:
            return "error (no code)"
        names = [name for bit, name in ASTERISK_ERRORS.items() if self.code[0] & bit]
        return f"error 0x{self.code.hex()}" + (f" ({', '.join(names)})" if names else "")


AudioSocketEvent = CallId | Audio | Dtmf | Hangup | PeerError


class State(Enum):
    AWAITING_UUID = "awaiting_uuid"
    STREAMING = "streaming"
    CLOSED = "closed"  # the peer said hangup (or error): nothing more is read
    FAILED = "failed"


@dataclass
class AudioSocketProtocol:
    state: State = State.AWAITING_UUID
    call_uuid: uuid.UUID | None = None
    _buffer: bytearray = field(default_factory=bytearray)

    # ---------------------------------------------------------------- inbound

    def receive_data(self, data: bytes) -> list[AudioSocketEvent]:
        """Parse what the socket delivered. Raises ProtocolError (and the connection is
        failed) for a message that breaks the protocol; incomplete ones wait for more."""
        if self.state is State.FAILED:
            raise ProtocolError("connection already failed")
        if self.state is State.CLOSED:
            return []  # bytes after a hangup: the peer is going away anyway
        self._buffer += data
        events: list[AudioSocketEvent] = []
        try:
            while self.state is not State.CLOSED and len(self._buffer) >= HEADER.size:
                kind, length = HEADER.unpack_from(self._buffer)
                self._check_header(kind, length)
                end = HEADER.size + length
                if len(self._buffer) < end:
                    break
                payload = bytes(self._buffer[HEADER.size : end])
                del self._buffer[:end]
                events.append(self._message(kind, payload))
        except ProtocolError as exc:
            self.state = State.FAILED
            exc.events = events
            raise
        return events

    def _check_header(self, kind: int, length: int) -> None:
        """Refuse a bad message from its header, before waiting for its payload."""
        if self.state is State.AWAITING_UUID and kind not in (KIND_UUID, KIND_HANGUP, KIND_ERROR):
            raise ProtocolError(
                f"expected the UUID message (kind 0x01) first, got kind 0x{kind:02x}"
            )
        if kind == KIND_UUID and length != 16:
            raise ProtocolError(f"UUID message has {length} bytes of payload, expected 16")
        if kind == KIND_HANGUP and length != 0:
            raise ProtocolError(f"hangup message has {length} bytes of payload, expected 0")
        if kind == KIND_DTMF and length != 1:
            raise ProtocolError(f"DTMF message has {length} bytes of payload, expected 1")
        if kind == KIND_AUDIO and (length == 0 or length % 2 or length > MAX_AUDIO_BYTES):
            raise ProtocolError(
                f"audio message has {length} bytes; expected whole 16-bit samples, "
                f"at most {MAX_AUDIO_BYTES} (1 s at 8 kHz)"
            )
        if kind == KIND_ERROR and length > MAX_ERROR_BYTES:
            raise ProtocolError(f"error message has {length} bytes, at most {MAX_ERROR_BYTES}")
        if kind in HIGHER_RATE_KINDS:
            raise ProtocolError(
                f"audio kind 0x{kind:02x} (a higher sample rate) is not supported: "
                "send 8 kHz signed linear (kind 0x10)"
            )
        if kind not in (KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR):
            raise ProtocolError(f"unknown message kind 0x{kind:02x}")

    def _message(self, kind: int, payload: bytes) -> AudioSocketEvent:
        if kind == KIND_UUID:
            if self.state is not State.AWAITING_UUID:
                raise ProtocolError("second UUID message on one connection")
            self.call_uuid = uuid.UUID(bytes=payload)
            self.state = State.STREAMING
            return CallId(self.call_uuid)
        if kind == KIND_AUDIO:
            return Audio(payload)
        if kind == KIND_DTMF:
            digit = chr(payload[0])
            if digit not in DTMF_DIGITS:
                raise ProtocolError(f"DTMF digit {payload!r} is not one of 0-9 * # A-D")
            return Dtmf(digit)
        self.state = State.CLOSED
        if kind == KIND_HANGUP:
            return Hangup()
        return PeerError(payload)

    # ---------------------------------------------------------------- outbound

    @staticmethod
    def audio(pcm: bytes) -> bytes:
        """One audio message (signed 16-bit little-endian, 8 kHz mono)."""
        if not pcm or len(pcm) % 2 or len(pcm) > MAX_AUDIO_BYTES:
            raise ValueError(f"{len(pcm)} bytes is not a frame of 16-bit samples")
        return HEADER.pack(KIND_AUDIO, len(pcm)) + pcm

    @staticmethod
    def hangup() -> bytes:
        """Ask Asterisk to hang up the channel."""
        return HEADER.pack(KIND_HANGUP, 0)
