"""mod_audio_fork and jambonz listen with plain strings: the metadata frame, L16
frames, DTMF and playDone in; playAudio / killAudio / disconnect out."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.freeswitch.audio_fork import (
    Audio,
    AudioForkProtocol,
    Dialect,
    Dtmf,
    Metadata,
    PlayDone,
    ProtocolError,
    UnknownMessage,
)

# jambonz: the call's attributes plus sampleRate, mixType and the verb's metadata.
JAMBONZ_METADATA = {
    "callSid": "ca9ae2ae-9f56-4ab1-9cd2-2bd2a0e6e5b1",
    "direction": "inbound",
    "from": "+15083084809",
    "to": "+15083728299",
    "callerName": "Dave",
    "accountSid": "ed649e33-e771-403a-8c99-1780eabbc803",
    "sampleRate": 16000,
    "mixType": "mono",
    "metadata": {"agent_id": "quick", "customer": "ACME"},
}
# mod_audio_fork: whatever the dialplan passes to uuid_audio_fork (voxline's shape).
FORK_METADATA = {
    "uuid": "7dd5e34e-5db4-4edb-a166-757e5d29b941",
    "from": "1000",
    "to": "5000",
    "sampleRate": 8000,
    "agent_id": "quick",
    "call_id": "call_fs_1",
}


def started(dialect: Dialect, metadata: dict[str, object]) -> AudioForkProtocol:
    proto = AudioForkProtocol(dialect)
    [event] = proto.receive_text(json.dumps(metadata))
    assert isinstance(event, Metadata)
    return proto


def test_jambonz_metadata() -> None:
    proto = started(Dialect.JAMBONZ, JAMBONZ_METADATA)
    meta = proto.metadata
    assert meta is not None
    assert (meta.sample_rate, meta.mix_type) == (16000, "mono")
    assert meta.call_sid == JAMBONZ_METADATA["callSid"]
    assert (meta.from_number, meta.to_number) == ("+15083084809", "+15083728299")
    assert meta.agent_id == "quick" and meta.call_id is None
    assert meta.custom == {"agent_id": "quick", "customer": "ACME"}


def test_fork_metadata_at_the_top() -> None:
    meta = started(Dialect.AUDIO_FORK, FORK_METADATA).metadata
    assert meta is not None
    assert meta.sample_rate == 8000 and meta.call_sid == FORK_METADATA["uuid"]
    assert (meta.agent_id, meta.call_id) == ("quick", "call_fs_1")


def test_audio_dtmf_play_done_and_unknown() -> None:
    proto = started(Dialect.JAMBONZ, JAMBONZ_METADATA)
    frame = b"\x01\x02" * 320
    assert proto.receive_bytes(frame) == [Audio(frame)]
    dtmf = {"event": "dtmf", "dtmf": "5", "duration": "1600"}
    assert proto.receive_text(json.dumps(dtmf)) == [Dtmf("5")]
    assert proto.receive_text('{"type": "playDone"}') == [PlayDone()]
    assert proto.receive_text('{"type": "transcription", "data": {}}') == [
        UnknownMessage("transcription")
    ]


def test_what_we_send() -> None:
    proto = started(Dialect.AUDIO_FORK, FORK_METADATA)
    pcm = b"\x10\x00" * 800
    play = json.loads(proto.play_audio(pcm))
    assert play["type"] == "playAudio"
    assert play["data"]["audioContentType"] == "raw" and play["data"]["sampleRate"] == 8000
    assert base64.b64decode(play["data"]["audioContent"]) == pcm
    assert json.loads(proto.kill_audio()) == {"type": "killAudio"}
    assert json.loads(proto.disconnect()) == {"type": "disconnect"}
    with pytest.raises(ValueError):
        proto.play_audio(b"\x00")
    with pytest.raises(RuntimeError):
        AudioForkProtocol().play_audio(pcm)


def test_subprotocols() -> None:
    assert Dialect.AUDIO_FORK.subprotocol == "audio.drachtio.org"
    assert Dialect.JAMBONZ.subprotocol == "audio.jambonz.org"


@pytest.mark.parametrize(
    ("first", "fragment"),
    [
        ("to=5000 from=1000", "metadata is not JSON"),
        ("[1]", "not an object"),
        (json.dumps({"callSid": "x"}), "no sampleRate"),
        (json.dumps({"sampleRate": 11025}), "11025 is not one of"),
        (json.dumps({"sampleRate": True}), "must be a number"),
        (json.dumps({"sampleRate": 8000, "mixType": "stereo"}), "'stereo' is not supported"),
        (json.dumps({"sampleRate": 8000, "metadata": "agent=quick"}), "must be an object"),
        ("x" * 20000, "at most 16384"),
    ],
)
def test_bad_metadata(first: str, fragment: str) -> None:
    proto = AudioForkProtocol(Dialect.JAMBONZ)
    with pytest.raises(ProtocolError, match=fragment):
        proto.receive_text(first)
    with pytest.raises(ProtocolError, match="already failed"):
        proto.receive_text(json.dumps(JAMBONZ_METADATA))


def test_bad_messages_after_the_metadata() -> None:
    with pytest.raises(ProtocolError, match="before the metadata"):
        AudioForkProtocol().receive_bytes(b"\x00" * 320)
    for data, fragment in [(b"\x00" * 321, "whole 16-bit"), (b"", "whole 16-bit")]:
        with pytest.raises(ProtocolError, match=fragment):
            started(Dialect.AUDIO_FORK, FORK_METADATA).receive_bytes(data)
    with pytest.raises(ProtocolError, match=r"1 s at 8000"):
        started(Dialect.AUDIO_FORK, FORK_METADATA).receive_bytes(b"\x00" * 16002)
    for text, fragment in [
        ("DTMF 5", "not JSON"),
        ('{"event": "dtmf", "dtmf": "55"}', "not one of 0-9"),
        ('{"event": "dtmf"}', "not one of 0-9"),
        ('"playDone"', "not an object"),
    ]:
        with pytest.raises(ProtocolError, match=fragment):
            started(Dialect.JAMBONZ, JAMBONZ_METADATA).receive_text(text)
