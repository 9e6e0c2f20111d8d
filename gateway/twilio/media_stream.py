"""Twilio Media Streams (bidirectional, ``<Connect><Stream>``) as a sans-I/O protocol.

``MediaStreamProtocol`` is the server's side of one stream: feed it each text
frame the carrier sends (``receive_text``) and it returns typed events, or
raises ``ProtocolError`` naming what was wrong; ask it for the messages to send
back (``media``, ``mark``, ``clear``). It does no I/O, so it is tested with
plain strings and any socket layer can drive it.

Message shapes follow Twilio's "Media Streams - WebSocket Messages" reference:
every message is a JSON object with an ``event`` discriminator; numbers such as
``sequenceNumber``, ``chunk`` and ``timestamp`` travel as decimal strings.

Liberal in what it accepts: a ``sequenceNumber`` that skips (messages lost), repeats
(a duplicate: dropped, it was handled the first time) or comes late (overtaken by a
later message) is logged and counted in ``sequence.stats`` and the stream goes on. A
late media frame is dropped: the audio after it already reached the engine and the
recording, and 20 ms out of place is worse than 20 ms missing. A late mark, DTMF or
stop is handled as usual: it says something that is still true. Only what makes the
stream meaningless raises: a message that is not a JSON object, another stream's
sid, a malformed payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway.media_sequence import Arrival, SequenceTracker

log = logging.getLogger(__name__)
# The one format Twilio streams: 8-bit mu-law, 8 kHz, mono.
MULAW_ENCODING = "audio/x-mulaw"
MULAW_RATE = 8000
FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz (one byte per sample)
# Twilio sends 20 ms per media message; a carrier that batches may send a few
# frames at once, but more than 1 s in one message is not a live stream.
MAX_MEDIA_BYTES = 50 * FRAME_BYTES
DTMF_DIGITS = frozenset("0123456789*#ABCD")
# Sequence anomalies logged one by one per stream; past that only the counters grow
# (a line losing packets for minutes must not flood the log).
_LOGGED_ANOMALIES = 10


class ProtocolError(Exception):
    """A message that breaks the protocol; it ends that one stream."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    media_format: MediaFormat


@dataclass(frozen=True)
class Media:
    payload: bytes  # mu-law, a whole number of 20 ms frames
    track: str  # "inbound" (the caller) or "outbound"
    chunk: int
    timestamp: int  # ms since the stream started, on the carrier's clock


@dataclass(frozen=True)
class Dtmf:
    digit: str
    track: str


@dataclass(frozen=True)
class Mark:
    """The carrier played every frame sent before the mark with this name."""

    name: str
    known: bool  # False for a name this side never sent


@dataclass(frozen=True)
class Stop:
    call_sid: str
    account_sid: str


StreamEvent = Connected | Start | Media | Dtmf | Mark | Stop


class StreamState(Enum):
    AWAITING_START = "awaiting_start"
    STREAMING = "streaming"
    STOPPED = "stopped"
    FAILED = "failed"


def _field(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise ProtocolError(f"{where} message has no '{key}'")
    return obj[key]


def _str_field(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    if key not in obj and not required:
        return ""
    value = _field(obj, key, where)
    if not isinstance(value, str):
        raise ProtocolError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def _object_field(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = _field(obj, key, where)
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}.{key} must be an object")
    return value


def _decimal(value: Any, where: str) -> int:
    """Twilio sends counters as decimal strings; accept JSON integers too."""
    if isinstance(value, bool):
        raise ProtocolError(f"{where} must be a decimal number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        # isascii: str.isdigit() takes "²", which int() refuses; 20 digits hold any
        # counter a stream can reach (int() refuses over 4300).
        number = int(value)
    else:
        raise ProtocolError(f"{where} must be a decimal number, got {value!r}")
    if number < 0:
        raise ProtocolError(f"{where} must not be negative")
    return number


@dataclass
class MediaStreamProtocol:
    """The server side of one bidirectional media stream."""

    state: StreamState = StreamState.AWAITING_START
    stream_sid: str | None = None
    start: Start | None = None
    sequence: SequenceTracker = field(default_factory=SequenceTracker)
    _anomalies_logged: int = field(default=0, repr=False)
    pending_marks: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- inbound

    def receive_text(self, text: str) -> list[StreamEvent]:
        """Parse one text frame. Raises ProtocolError (and the stream is failed) if bad."""
        try:
            return self._receive(text)
        except ProtocolError:
            self.state = StreamState.FAILED
            raise

    def receive_bytes(self, data: bytes) -> list[StreamEvent]:
        self.state = StreamState.FAILED
        raise ProtocolError(f"binary frame of {len(data)} bytes; media streams send JSON text")

    def _receive(self, text: str) -> list[StreamEvent]:
        if self.state is StreamState.FAILED:
            raise ProtocolError("stream already failed")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:
            # ValueError: not JSON, or a number over Python's 4300-digit int limit.
            raise ProtocolError(f"frame is not JSON: {str(exc)[:80]}") from None
        if not isinstance(msg, dict):
            raise ProtocolError("frame is JSON but not an object")
        event = msg.get("event")
        if not isinstance(event, str):
            raise ProtocolError("message has no 'event' string")
        arrival = Arrival.NEXT
        if "sequenceNumber" in msg:
            arrival = self._sequence(msg["sequenceNumber"], event)
            if arrival is Arrival.REPEAT:
                return []  # handled the first time it came
        if (
            event == "media"
            and arrival is Arrival.LATE
            and self.state is not StreamState.AWAITING_START
        ):
            self._check_stream_sid(msg, event)
            self._media(msg)  # still checked: a malformed frame is one, late or not
            return []
        if event == "connected":
            return [self._connected(msg)]
        if event == "start":
            return [self._start(msg)]
        if event in ("media", "dtmf", "mark", "stop"):
            if self.state is StreamState.AWAITING_START:
                raise ProtocolError(f"'{event}' before 'start'")
            if self.state is StreamState.STOPPED:
                raise ProtocolError(f"'{event}' after 'stop'")
            self._check_stream_sid(msg, event)
            if event == "media":
                return [self._media(msg)]
            if event == "dtmf":
                return [self._dtmf(msg)]
            if event == "mark":
                return [self._mark(msg)]
            self.state = StreamState.STOPPED
            stop = msg.get("stop", {})
            if not isinstance(stop, dict):
                raise ProtocolError("stop.stop must be an object")
            return [Stop(str(stop.get("callSid", "")), str(stop.get("accountSid", "")))]
        raise ProtocolError(f"unknown event {event[:40]!r}")

    def _sequence(self, value: Any, event: str) -> Arrival:
        number = _decimal(value, "sequenceNumber")
        last = self.sequence.last
        arrival = self.sequence.observe(number)
        if last is not None and (arrival is not Arrival.NEXT or number > last + 1):
            self._anomalies_logged += 1
            if self._anomalies_logged <= _LOGGED_ANOMALIES:
                what = (
                    f"skips {number - last - 1} after {last}"
                    if arrival is Arrival.NEXT
                    else f"is {arrival.value} (after {last})"
                )
                log.info(
                    "stream %s: %s sequenceNumber %d %s",
                    self.stream_sid or "-",
                    event[:20],
                    number,
                    what,
                )
        return arrival

    def _check_stream_sid(self, msg: dict[str, Any], event: str) -> None:
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            raise ProtocolError(f"{event}.streamSid {sid!r} is not this stream's")

    def _connected(self, msg: dict[str, Any]) -> Connected:
        if self.state is not StreamState.AWAITING_START:
            raise ProtocolError("'connected' after 'start'")
        return Connected(
            _str_field(msg, "protocol", "connected", required=False),
            _str_field(msg, "version", "connected", required=False),
        )

    def _start(self, msg: dict[str, Any]) -> Start:
        if self.state is not StreamState.AWAITING_START:
            raise ProtocolError("second 'start' on one stream")
        body = _object_field(msg, "start", "start")
        stream_sid = _str_field(body, "streamSid", "start")
        if not stream_sid:
            raise ProtocolError("start.streamSid is empty")
        fmt = _object_field(body, "mediaFormat", "start")
        media_format = MediaFormat(
            encoding=_str_field(fmt, "encoding", "start.mediaFormat"),
            sample_rate=_decimal(_field(fmt, "sampleRate", "start.mediaFormat"), "sampleRate"),
            channels=_decimal(_field(fmt, "channels", "start.mediaFormat"), "channels"),
        )
        if (media_format.encoding, media_format.sample_rate, media_format.channels) != (
            MULAW_ENCODING,
            MULAW_RATE,
            1,
        ):
            raise ProtocolError(
                f"unsupported mediaFormat {media_format.encoding}/{media_format.sample_rate}/"
                f"{media_format.channels}; expected {MULAW_ENCODING}/{MULAW_RATE}/1"
            )
        params = body.get("customParameters", {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise ProtocolError("start.customParameters must be an object of strings")
        tracks = body.get("tracks", ["inbound"])
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise ProtocolError("start.tracks must be a list of strings")
        start = Start(
            stream_sid=stream_sid,
            call_sid=_str_field(body, "callSid", "start", required=False),
            account_sid=_str_field(body, "accountSid", "start", required=False),
            tracks=tuple(tracks),
            custom_parameters=dict(params),
            media_format=media_format,
        )
        self.state = StreamState.STREAMING
        self.stream_sid = stream_sid
        self.start = start
        return start

    def _media(self, msg: dict[str, Any]) -> Media:
        body = _object_field(msg, "media", "media")
        raw = _str_field(body, "payload", "media")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("media.payload is not valid base64") from None
        if not payload or len(payload) % FRAME_BYTES or len(payload) > MAX_MEDIA_BYTES:
            raise ProtocolError(
                f"media.payload has {len(payload)} bytes; expected whole 20 ms frames of "
                f"{FRAME_BYTES} bytes (mu-law 8 kHz), at most {MAX_MEDIA_BYTES}"
            )
        track = body.get("track", "inbound")
        if track not in ("inbound", "outbound"):
            raise ProtocolError(f"media.track {track!r} is not 'inbound' or 'outbound'")
        return Media(
            payload=payload,
            track=track,
            chunk=_decimal(body.get("chunk", "0"), "media.chunk"),
            timestamp=_decimal(body.get("timestamp", "0"), "media.timestamp"),
        )

    def _dtmf(self, msg: dict[str, Any]) -> Dtmf:
        body = _object_field(msg, "dtmf", "dtmf")
        digit = _str_field(body, "digit", "dtmf")
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ProtocolError(f"dtmf.digit {digit[:10]!r} is not one of 0-9 * # A-D")
        return Dtmf(digit, str(body.get("track", "inbound_track")))

    def _mark(self, msg: dict[str, Any]) -> Mark:
        body = _object_field(msg, "mark", "mark")
        name = _str_field(body, "name", "mark")
        known = name in self.pending_marks
        if known:
            self.pending_marks.remove(name)
        return Mark(name, known)

    # ---------------------------------------------------------------- outbound

    def _sid(self) -> str:
        if self.stream_sid is None:
            raise RuntimeError("no streamSid yet: nothing may be sent before 'start'")
        return self.stream_sid

    def media(self, payload: bytes) -> list[str]:
        """Messages carrying ``payload`` (mu-law), one per 20 ms frame."""
        if len(payload) % FRAME_BYTES:
            raise ValueError(f"{len(payload)} bytes is not a whole number of 20 ms frames")
        sid = self._sid()
        return [
            json.dumps(
                {
                    "event": "media",
                    "streamSid": sid,
                    "media": {"payload": base64.b64encode(payload[i : i + FRAME_BYTES]).decode()},
                }
            )
            for i in range(0, len(payload), FRAME_BYTES)
        ]

    def mark(self, name: str) -> str:
        """A mark the carrier echoes once everything sent before it has played."""
        message = json.dumps({"event": "mark", "streamSid": self._sid(), "mark": {"name": name}})
        self.pending_marks.append(name)
        return message

    def clear(self) -> str:
        """Drop every frame the carrier has buffered; it then echoes the pending marks."""
        return json.dumps({"event": "clear", "streamSid": self._sid()})
