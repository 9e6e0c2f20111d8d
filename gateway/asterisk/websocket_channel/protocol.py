"""Asterisk's WebSocket channel (``chan_websocket``) as a sans-I/O protocol.

Asterisk 20.16, 21.11, 22.6 and 23.0 on carry a call's media over a WebSocket: BINARY
frames are raw media in the channel's format, TEXT frames are control messages. Here
Asterisk is the client (``Dial(WebSocket/<connection>/c(slin16))`` or ARI
``externalMedia`` with ``transport=websocket``, ``encapsulation=none``, through a
``websocket_client.conf`` connection) and voxline the server.

Sources: "WebSocket" channel driver page, docs.asterisk.org/Configuration/
Channel-Drivers/WebSocket (asterisk/documentation ``docs/Configuration/Channel-Drivers/
WebSocket.md``) and ``channels/chan_websocket.c`` (asterisk/asterisk), which builds
every event below. Notifications we read:

- ``MEDIA_START connection_id:<id> channel:<name> channel_id:<uniqueid> format:<fmt>
  optimal_frame_size:<n> ptime:<ms>`` (older releases send fewer fields; ``format`` is
  required here, the frame size defaults to 20 ms of the format);
- ``DTMF_END digit:<d>``; ``MEDIA_XOFF`` / ``MEDIA_XON`` (the driver's queue passed
  about 900 frames / fell below about 800: stop / resume sending media);
- ``QUEUE_DRAINED`` (after our ``REPORT_QUEUE_DRAINED``: everything sent has played);
- ``STATUS ...``, ``MEDIA_BUFFERING_COMPLETED [id]``, ``MEDIA_MARK_PROCESSED [id]``,
  ``ERROR channel_id:<id> error_text:<text>`` (a command the driver refused).

Asterisk hangs up by closing the WebSocket (there is no hang-up notification);
``HANGUP`` is the command the app sends, and is read as a hang-up if it ever comes the
other way. Commands we send: ``FLUSH_MEDIA`` (barge-in: drop what is queued and not
yet played), ``REPORT_QUEUE_DRAINED``, ``HANGUP``, ``ANSWER``, ``GET_STATUS``,
``MARK_MEDIA <id>`` (newer releases). Since 20.18 / 22.8 / 23.2 the driver can speak
JSON instead (``{"event": "MEDIA_START", ...}`` in, ``{"command": "FLUSH_MEDIA"}``
out, chosen by ``chan_websocket.conf`` or the dial option ``f(json)``): both are read,
and commands go out in the form ``MEDIA_START`` came in. Unknown but well-formed
notifications are returned as ``UnknownEvent`` (a newer Asterisk may add some);
malformed ones raise ``ProtocolError``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway.asterisk.websocket_channel.media_format import FORMATS, MediaFormat

# The driver cannot take a message longer than this: "the websocket will be closed".
MAX_MESSAGE_BYTES = 65500
MAX_TEXT_CHARS = 64 * 1024  # MEDIA_START with every channel variable stays far below
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_EVENT_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class ProtocolError(Exception):
    """A message that breaks the protocol; it ends that one call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ControlFormat(Enum):
    PLAIN = "plain-text"
    JSON = "json"


@dataclass(frozen=True)
class MediaStart:
    connection_id: str
    channel: str
    channel_id: str  # the channel's uniqueid ("" from releases that do not send it)
    format: MediaFormat
    optimal_frame_size: int
    ptime_ms: int
    channel_variables: dict[str, str]
    control_format: ControlFormat


@dataclass(frozen=True)
class Media:
    data: bytes  # raw media in the MEDIA_START format


@dataclass(frozen=True)
class DtmfEnd:
    digit: str


@dataclass(frozen=True)
class MediaXoff:
    pass


@dataclass(frozen=True)
class MediaXon:
    pass


@dataclass(frozen=True)
class QueueDrained:
    pass


@dataclass(frozen=True)
class MediaBufferingCompleted:
    correlation_id: str


@dataclass(frozen=True)
class MediaMarkProcessed:
    correlation_id: str


@dataclass(frozen=True)
class Status:
    fields: dict[str, str]


@dataclass(frozen=True)
class DriverError:
    text: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class UnknownEvent:
    name: str


ChannelEvent = (
    MediaStart
    | Media
    | DtmfEnd
    | MediaXoff
    | MediaXon
    | QueueDrained
    | MediaBufferingCompleted
    | MediaMarkProcessed
    | Status
    | DriverError
    | Hangup
    | UnknownEvent
)


class State(Enum):
    AWAITING_START = "awaiting_start"
    STREAMING = "streaming"
    FAILED = "failed"


def _parse_plain(text: str) -> tuple[str, dict[str, str], list[str]]:
    """``NAME key:value key:value [bare]`` -> (name, fields, bare words)."""
    name, _, rest = text.partition(" ")
    fields: dict[str, str] = {}
    bare: list[str] = []
    if name == "ERROR" and "error_text:" in rest:
        # The error text is free text with spaces: everything after its key.
        rest, _, fields["error_text"] = rest.partition("error_text:")
    for token in rest.split():
        key, sep, value = token.partition(":")
        if sep and key:
            fields[key] = value
        else:
            bare.append(token)
    return name, fields, bare


def _int_field(fields: dict[str, Any], key: str, default: int) -> int:
    value = fields.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ProtocolError(f"MEDIA_START {key} must be a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        # isascii: str.isdigit() takes "²", which int() refuses; 9 digits hold any
        # frame size or ptime (int() refuses over 4300).
        number = int(value)
    else:
        raise ProtocolError(f"MEDIA_START {key} must be a number, got {value!r}")
    return number


@dataclass
class WebSocketChannelProtocol:
    """The application's (our) side of one WebSocket channel."""

    state: State = State.AWAITING_START
    start: MediaStart | None = None
    xoff: bool = False  # the driver asked us to stop sending media
    _control: ControlFormat = ControlFormat.PLAIN
    _sent_drain_request: bool = field(default=False, repr=False)

    # ---------------------------------------------------------------- inbound

    def receive_text(self, text: str) -> list[ChannelEvent]:
        """Parse one TEXT frame. Raises ProtocolError (and the call is failed) if bad."""
        try:
            return [self._receive_text(text)]
        except ProtocolError:
            self.state = State.FAILED
            raise

    def receive_bytes(self, data: bytes) -> list[ChannelEvent]:
        """One BINARY frame: media in the channel's format."""
        try:
            return [self._receive_bytes(data)]
        except ProtocolError:
            self.state = State.FAILED
            raise

    def _receive_bytes(self, data: bytes) -> Media:
        if self.state is State.FAILED:
            raise ProtocolError("channel already failed")
        if self.start is None:
            raise ProtocolError(f"{len(data)} bytes of media before MEDIA_START")
        if not data or len(data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"media frame of {len(data)} bytes (1..{MAX_MESSAGE_BYTES})")
        fmt = self.start.format
        if len(data) % fmt.sample_bytes:
            raise ProtocolError(
                f"media frame of {len(data)} bytes is not whole {fmt.name} samples "
                f"({fmt.sample_bytes} bytes each)"
            )
        return Media(data)

    def _receive_text(self, text: str) -> ChannelEvent:
        if self.state is State.FAILED:
            raise ProtocolError("channel already failed")
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError(f"control message of {len(text)} characters")
        text = text.strip()
        if not text:
            raise ProtocolError("empty control message")
        if text.startswith("{"):
            name, fields, bare = self._parse_json(text)
            control = ControlFormat.JSON
        else:
            name, fields, bare = _parse_plain(text)
            control = ControlFormat.PLAIN
        if not _EVENT_NAME.fullmatch(name):
            raise ProtocolError(f"control message {text[:40]!r} does not start with an event name")
        if name == "MEDIA_START":
            return self._media_start(fields, control)
        if self.start is None:
            raise ProtocolError(f"{name} before MEDIA_START")
        if name == "DTMF_END":
            digit = str(fields.get("digit", ""))
            if len(digit) != 1 or digit not in DTMF_DIGITS:
                raise ProtocolError(f"DTMF_END digit {digit[:10]!r} is not one of 0-9 * # A-D")
            return DtmfEnd(digit)
        if name == "MEDIA_XOFF":
            self.xoff = True
            return MediaXoff()
        if name == "MEDIA_XON":
            self.xoff = False
            return MediaXon()
        if name == "QUEUE_DRAINED":
            self._sent_drain_request = False
            return QueueDrained()
        if name == "MEDIA_BUFFERING_COMPLETED":
            return MediaBufferingCompleted(str(fields.get("correlation_id", " ".join(bare))))
        if name == "MEDIA_MARK_PROCESSED":
            return MediaMarkProcessed(str(fields.get("correlation_id", " ".join(bare))))
        if name == "STATUS":
            return Status({k: str(v) for k, v in fields.items() if k != "event"})
        if name == "ERROR":
            return DriverError(str(fields.get("error_text", "")).strip())
        if name == "HANGUP":
            return Hangup()
        return UnknownEvent(name)

    @staticmethod
    def _parse_json(text: str) -> tuple[str, dict[str, Any], list[str]]:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
            raise ProtocolError(f"control message is not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise ProtocolError("control message is JSON but not an object")
        name = msg.get("event")
        if not isinstance(name, str):
            raise ProtocolError("JSON control message has no 'event' string")
        return name, msg, []

    def _media_start(self, fields: dict[str, Any], control: ControlFormat) -> MediaStart:
        if self.start is not None:
            raise ProtocolError("second MEDIA_START on one channel")
        format_name = fields.get("format")
        if not isinstance(format_name, str) or not format_name:
            raise ProtocolError("MEDIA_START has no format")
        fmt = FORMATS.get(format_name)
        if fmt is None:
            supported = ", ".join(sorted(FORMATS))
            raise ProtocolError(
                f"MEDIA_START format {format_name[:20]!r} is not supported; dial with "
                f"c(<format>) for one of: {supported}"
            )
        frame_size = _int_field(fields, "optimal_frame_size", fmt.frame_bytes)
        if frame_size <= 0 or frame_size % fmt.sample_bytes or frame_size > MAX_MESSAGE_BYTES:
            raise ProtocolError(
                f"MEDIA_START optimal_frame_size {frame_size} is not whole {fmt.name} samples"
            )
        variables = fields.get("channel_variables") or {}
        if not isinstance(variables, dict):
            raise ProtocolError("MEDIA_START channel_variables must be an object")
        start = MediaStart(
            connection_id=str(fields.get("connection_id", "")),
            channel=str(fields.get("channel", "")),
            channel_id=str(fields.get("channel_id", "")),
            format=fmt,
            optimal_frame_size=frame_size,
            ptime_ms=_int_field(fields, "ptime", 20),
            channel_variables={str(k): str(v) for k, v in variables.items()},
            control_format=control,
        )
        self.start = start
        self._control = control
        self.state = State.STREAMING
        return start

    # ---------------------------------------------------------------- outbound

    def _command(self, command: str, correlation_id: str | None = None) -> str:
        if self.start is None:
            raise RuntimeError("no MEDIA_START yet: commands wait for the channel")
        if self._control is ControlFormat.JSON:
            body: dict[str, str] = {"command": command}
            if correlation_id is not None:
                body["correlation_id"] = correlation_id
            return json.dumps(body)
        return f"{command} {correlation_id}" if correlation_id else command

    def flush_media(self) -> str:
        """Barge-in: the driver drops every frame queued and not yet played."""
        return self._command("FLUSH_MEDIA")

    def report_queue_drained(self) -> str:
        """Ask for one ``QUEUE_DRAINED`` once the queue is empty (everything played)."""
        self._sent_drain_request = True
        return self._command("REPORT_QUEUE_DRAINED")

    @property
    def drain_requested(self) -> bool:
        """A ``REPORT_QUEUE_DRAINED`` is outstanding (its ``QUEUE_DRAINED`` not back)."""
        return self._sent_drain_request

    def hangup(self) -> str:
        return self._command("HANGUP")

    def answer(self) -> str:
        return self._command("ANSWER")

    def get_status(self) -> str:
        return self._command("GET_STATUS")

    def mark_media(self, correlation_id: str) -> str:
        return self._command("MARK_MEDIA", correlation_id)

    def media(self, payload: bytes) -> list[bytes]:
        """BINARY frames carrying ``payload``, each a whole number of optimal frames."""
        if self.start is None:
            raise RuntimeError("no MEDIA_START yet: media waits for the channel")
        size = self.start.optimal_frame_size
        if len(payload) % size:
            raise ValueError(f"{len(payload)} bytes is not a whole number of {size}-byte frames")
        step = MAX_MESSAGE_BYTES // size * size
        return [payload[i : i + step] for i in range(0, len(payload), step)]
