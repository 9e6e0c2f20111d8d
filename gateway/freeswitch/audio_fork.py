"""FreeSWITCH ``mod_audio_fork`` and jambonz ``listen`` as one sans-I/O protocol.

Both open a WebSocket to voxline, send one TEXT frame of JSON metadata, then the
caller's audio as BINARY frames of L16 (signed 16-bit little-endian PCM, mono) at the
sample rate the metadata names. Audio goes back as ``playAudio`` JSON (base64 raw
L16 and its ``sampleRate``), ``killAudio`` stops what is playing (barge-in) and
``disconnect`` asks the far end to end the stream.

Sources:

- mod_audio_fork (drachtio/drachtio-freeswitch-modules ``modules/mod_audio_fork/
  README.md`` and ``lws_glue.cpp``): ``uuid_audio_fork <uuid> start <ws-url> <mono|
  mixed|stereo> <8k|16k> <metadata>``; subprotocol ``audio.drachtio.org``; the
  metadata is arbitrary text sent first, then binary L16; ``playAudio`` (``data``:
  ``audioContentType`` ``raw``, ``sampleRate``, ``audioContent`` base64) is written
  to a file and announced as a ``mod_audio_fork::play_audio`` event for the
  application to play; ``killAudio`` breaks the current playback; there is no
  "played" acknowledgement. Because the metadata is free text and the L16 frames do
  not say their rate, voxline requires JSON metadata with ``sampleRate`` (the rate
  given to ``uuid_audio_fork``). DTMF is not forked by the module; an application
  can pass it with ``uuid_audio_fork <uuid> send_text`` in jambonz's shape below.
- jambonz ``listen`` (docs.jambonz.org/verbs/verbs/listen; jambonz/next-static-site
  ``markdown/docs/webhooks/listen.md``): subprotocol ``audio.jambonz.org``; the first
  frame is the call's attributes (``callSid``, ``from``, ``to``, ...) plus
  ``sampleRate`` and ``mixType`` and the verb's ``metadata``; with ``passDtmf`` the
  caller's digits come as ``{"event": "dtmf", "dtmf": "5", "duration": ...}``; each
  ``playAudio`` is answered by ``{"type": "playDone"}`` once played out.

Only mono is taken (``mixed``/``stereo`` would put the agent's own voice into what
the engine hears). Unknown JSON messages after the metadata are returned as
``UnknownMessage`` (ignored); anything malformed raises ``ProtocolError``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000, 64000})
MAX_METADATA_CHARS = 16 * 1024
MAX_TEXT_CHARS = 4 * 1024
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class Dialect(Enum):
    AUDIO_FORK = "mod_audio_fork"
    JAMBONZ = "jambonz"

    @property
    def subprotocol(self) -> str:
        return "audio.drachtio.org" if self is Dialect.AUDIO_FORK else "audio.jambonz.org"


class ProtocolError(Exception):
    """A message that breaks the protocol; it ends that one call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Metadata:
    sample_rate: int
    mix_type: str
    call_sid: str  # the PBX's call id: jambonz callSid, FreeSWITCH uuid
    from_number: str
    to_number: str
    agent_id: str | None
    call_id: str | None
    custom: dict[str, Any]  # the caller's own fields: jambonz ``metadata``, else all


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # L16 little-endian mono at the metadata's sample rate


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class PlayDone:
    pass


@dataclass(frozen=True)
class UnknownMessage:
    kind: str


ForkEvent = Metadata | Audio | Dtmf | PlayDone | UnknownMessage


def _text_field(obj: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _sample_rate(value: Any) -> int:
    if isinstance(value, bool):
        raise ProtocolError("metadata sampleRate must be a number")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        value = int(value)  # isascii: str.isdigit() takes "²", which int() refuses
    if not isinstance(value, int):
        raise ProtocolError(
            'metadata has no sampleRate: add "sampleRate": 8000 or 16000 (the rate the '
            "stream was started with) to the metadata"
        )
    if value not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in sorted(SAMPLE_RATES))
        raise ProtocolError(f"metadata sampleRate {value} is not one of {rates}")
    return value


@dataclass
class AudioForkProtocol:
    dialect: Dialect = Dialect.AUDIO_FORK
    metadata: Metadata | None = None
    failed: bool = False

    # ---------------------------------------------------------------- inbound

    def receive_text(self, text: str) -> list[ForkEvent]:
        try:
            return [self._receive_text(text)]
        except ProtocolError:
            self.failed = True
            raise

    def receive_bytes(self, data: bytes) -> list[ForkEvent]:
        try:
            return [self._receive_bytes(data)]
        except ProtocolError:
            self.failed = True
            raise

    def _receive_bytes(self, data: bytes) -> Audio:
        if self.failed:
            raise ProtocolError("stream already failed")
        if self.metadata is None:
            raise ProtocolError(f"{len(data)} bytes of audio before the metadata")
        limit = self.metadata.sample_rate * 2  # one second of L16
        if not data or len(data) % 2 or len(data) > limit:
            raise ProtocolError(
                f"audio frame of {len(data)} bytes; expected whole 16-bit samples, at most "
                f"{limit} (1 s at {self.metadata.sample_rate} Hz)"
            )
        return Audio(data)

    def _receive_text(self, text: str) -> ForkEvent:
        if self.failed:
            raise ProtocolError("stream already failed")
        first = self.metadata is None
        limit = MAX_METADATA_CHARS if first else MAX_TEXT_CHARS
        if len(text) > limit:
            raise ProtocolError(f"text frame of {len(text)} characters (at most {limit})")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
            what = "metadata" if first else "text frame"
            raise ProtocolError(f"{what} is not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise ProtocolError("metadata is JSON but not an object" if first else "not an object")
        if first:
            return self._metadata(msg)
        if msg.get("event") == "dtmf":
            digit = msg.get("dtmf")
            if not isinstance(digit, str) or len(digit) != 1 or digit not in DTMF_DIGITS:
                raise ProtocolError(f"dtmf {str(digit)[:10]!r} is not one of 0-9 * # A-D")
            return Dtmf(digit)
        if msg.get("type") == "playDone":
            return PlayDone()
        kind = msg.get("type", msg.get("event"))
        return UnknownMessage(str(kind)[:40])

    def _metadata(self, msg: dict[str, Any]) -> Metadata:
        nested = msg.get("metadata")
        if nested is not None and not isinstance(nested, dict):
            raise ProtocolError("metadata.metadata must be an object")
        custom: dict[str, Any] = dict(nested) if isinstance(nested, dict) else dict(msg)
        mix_type = msg.get("mixType", "mono")
        if mix_type != "mono":
            raise ProtocolError(f"mixType {str(mix_type)[:20]!r} is not supported: stream mono")
        # Our own keys may sit at the top (mod_audio_fork) or in the verb's metadata (jambonz).
        both = {**msg, **custom}
        metadata = Metadata(
            sample_rate=_sample_rate(msg.get("sampleRate")),
            mix_type=mix_type,
            call_sid=_text_field(msg, "callSid", "uuid", "call_uuid"),
            from_number=_text_field(msg, "from", "caller_id_number"),
            to_number=_text_field(msg, "to", "destination_number"),
            agent_id=_text_field(both, "agent_id") or None,
            call_id=_text_field(both, "call_id") or None,
            custom=custom,
        )
        self.metadata = metadata
        return metadata

    # ---------------------------------------------------------------- outbound

    def play_audio(self, pcm: bytes) -> str:
        """A ``playAudio`` carrying raw L16 at the stream's own sample rate."""
        if self.metadata is None:
            raise RuntimeError("no metadata yet: nothing may be sent before it")
        if not pcm or len(pcm) % 2:
            raise ValueError(f"{len(pcm)} bytes is not whole 16-bit samples")
        return json.dumps(
            {
                "type": "playAudio",
                "data": {
                    "audioContentType": "raw",
                    "sampleRate": self.metadata.sample_rate,
                    "audioContent": base64.b64encode(pcm).decode(),
                },
            }
        )

    @staticmethod
    def kill_audio() -> str:
        """Stop what is playing now (barge-in)."""
        return json.dumps({"type": "killAudio"})

    @staticmethod
    def disconnect() -> str:
        """Ask the far end to end the stream (jambonz ends ``listen``)."""
        return json.dumps({"type": "disconnect"})
