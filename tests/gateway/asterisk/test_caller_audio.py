"""The caller's side of each PBX transport, with a fake engine session: the wire format
decoded (slin little-endian, mu-law), resampled to the engine's 16 kHz 20 ms frames,
and recorded; digits passed on."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from gateway.asterisk.audiosocket.protocol import Audio, Dtmf
from gateway.asterisk.audiosocket.server import AudioSocketCall, AudioSocketGateway
from gateway.asterisk.websocket_channel.call import WebSocketChannelCall, WebSocketChannelGateway
from gateway.asterisk.websocket_channel.protocol import MediaStart
from gateway.freeswitch.audio_fork import Metadata
from gateway.freeswitch.call import AudioForkCall, JambonzGateway
from tests.gateway.asterisk.helpers import (
    FakeSession,
    FakeWebSocket,
    FakeWriter,
    dominant_hz,
    gateway_parts,
    rms,
)
from voice_core.audio import mulaw


def tone_at(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def check_engine_heard_the_tone(session: FakeSession) -> None:
    heard = session.audio()
    assert heard.size >= 0.8 * 16000  # the resampler may hold the last ~100 ms
    steady = heard[3200:]
    assert abs(dominant_hz(steady) - 440) < 5
    assert 0.8 * 8000 / np.sqrt(2) < rms(steady) < 1.2 * 8000 / np.sqrt(2)


async def test_audiosocket_slin_8k(tmp_path: Path) -> None:
    gw = AudioSocketGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    call = AudioSocketCall(None, FakeWriter(), gw)  # type: ignore[arg-type]
    session = FakeSession()
    call.bridge.session = session  # type: ignore[assignment]
    pcm = tone_at(8000)
    for i in range(0, pcm.size, 160):  # Asterisk's 320-byte frames
        call._on_event(Audio(pcm[i : i + 160].astype("<i2").tobytes()))
    call._on_event(Dtmf("7"))
    check_engine_heard_the_tone(session)
    assert session.digits == ["7"]
    assert call.bridge.recorder.caller.length == 8000  # a second, on the 8 kHz timeline


@pytest.mark.parametrize(("fmt", "rate", "frame"), [("slin16", 16000, 640), ("ulaw", 8000, 160)])
async def test_websocket_channel(tmp_path: Path, fmt: str, rate: int, frame: int) -> None:
    gw = WebSocketChannelGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    call = WebSocketChannelCall(FakeWebSocket(), gw)  # type: ignore[arg-type]
    [start] = call.proto.receive_text(f"MEDIA_START format:{fmt} optimal_frame_size:{frame}")
    assert isinstance(start, MediaStart)
    call.setup_media(start)
    session = FakeSession()
    call.bridge.session = session  # type: ignore[assignment]
    pcm = tone_at(rate)
    wire = mulaw.encode(pcm) if fmt == "ulaw" else pcm.astype("<i2").tobytes()
    for i in range(0, len(wire), frame):
        for event in call.proto.receive_bytes(wire[i : i + frame]):
            await call._on_event(event)
    for event in call.proto.receive_text("DTMF_END digit:# channel_id:1.1"):
        await call._on_event(event)
    check_engine_heard_the_tone(session)
    assert session.digits == ["#"]


async def test_jambonz_l16_24k(tmp_path: Path) -> None:
    gw = JambonzGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    call = AudioForkCall(FakeWebSocket(), gw)  # type: ignore[arg-type]
    [meta] = call.proto.receive_text(json.dumps({"sampleRate": 24000, "callSid": "c1"}))
    assert isinstance(meta, Metadata)
    call.setup_media(meta)
    session = FakeSession()
    call.bridge.session = session  # type: ignore[assignment]
    pcm = tone_at(24000)
    wire = struct.pack(f"<{pcm.size}h", *pcm.tolist())  # little-endian, as documented
    for i in range(0, len(wire), 960):
        for event in call.proto.receive_bytes(wire[i : i + 960]):
            call._on_event(event)
    for event in call.proto.receive_text('{"event": "dtmf", "dtmf": "3", "duration": "800"}'):
        call._on_event(event)
    check_engine_heard_the_tone(session)
    assert session.digits == ["3"]


async def test_audio_faster_than_real_time_ends_the_call(tmp_path: Path) -> None:
    gw = AudioSocketGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    call = AudioSocketCall(None, FakeWriter(), gw)  # type: ignore[arg-type]
    session = FakeSession()
    call.bridge.session = session  # type: ignore[assignment]
    frame = Audio(bytes(320))
    for _ in range(150):  # 3 s of audio at once: more than the 2 s burst allowed
        call._on_event(frame)
    assert call.bridge.end is not None
    assert str(call.bridge.end).startswith("protocol_error: media faster than real time")
    assert len(session.frames) < 110  # what came after the verdict never reached the engine

    ws_gw = WebSocketChannelGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    ws_call = WebSocketChannelCall(FakeWebSocket(), ws_gw)  # type: ignore[arg-type]
    [start] = ws_call.proto.receive_text("MEDIA_START format:slin16 optimal_frame_size:640")
    assert isinstance(start, MediaStart)
    ws_call.setup_media(start)
    ws_call.bridge.session = FakeSession()  # type: ignore[assignment]
    for _ in range(150):
        for event in ws_call.proto.receive_bytes(bytes(640)):
            await ws_call._on_event(event)
    assert str(ws_call.bridge.end).startswith("protocol_error: media faster than real time")
    assert ws_call.line.protocol_error  # closed with 1008
