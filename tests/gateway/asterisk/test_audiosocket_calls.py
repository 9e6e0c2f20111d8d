"""AudioSocket calls end to end: Asterisk's side over a real loopback TCP socket, the
asyncio server, the real engine (greeting, a question, the answer); bad connections
alongside end only themselves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from gateway.asterisk.audiosocket.server import AudioSocketGateway
from gateway.calls import CallRecord, CallStatus
from gateway.simulated.callee import synthesize
from tests.gateway.asterisk.audiosocket_peer import AudioSocketPeer, message
from tests.gateway.asterisk.helpers import QUICK_AGENT_ID, QUICK_WELCOME, gateway_parts, words
from voice_core.audio.resample import resample
from voice_core.engine import VoiceEngine
from voice_core.events import AgentUtteranceEnd, SessionEvent

pytestmark = pytest.mark.models


@pytest_asyncio.fixture(loop_scope="session")
async def audiosocket(engine: VoiceEngine, tmp_path: Path) -> AsyncIterator[AudioSocketGateway]:
    gateway = AudioSocketGateway(**gateway_parts(engine, tmp_path), port=0, uuid_timeout_s=1.0)
    await gateway.start()
    yield gateway
    await gateway.stop()


async def raw_connection(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes; what it sent back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    async with asyncio.timeout(10):
        while chunk := await reader.read(65536):
            received += chunk
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return received


async def records_ending_with(gateway: AudioSocketGateway, fragment: str) -> list[CallRecord]:
    return [r for r in await gateway.store.list() if fragment in (r.end_reason or "")]


async def test_call_is_paced_heard_both_ways_recorded_and_bad_sockets_end_alone(
    audiosocket: AudioSocketGateway, engine: VoiceEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.asterisk.audiosocket.server")
    gw = audiosocket
    seen: list[tuple[str, SessionEvent]] = []
    gw.observers.append(lambda call_id, event: seen.append((call_id, event)))
    port = gw.bound_port
    peer = AudioSocketPeer("127.0.0.1", port)
    gw.expect(peer.call_uuid, agent_id=QUICK_AGENT_ID, call_id="call_as_1")
    bad_mid_call = uuid.uuid4()
    gw.expect(bad_mid_call, agent_id=QUICK_AGENT_ID, call_id="call_as_bad")
    unknown = uuid.uuid4()  # nobody registered it and there is no default agent

    await peer.connect()
    bad = await asyncio.gather(
        raw_connection(port, b"GET / HTTP/1.1\r\n\r\n"),  # not AudioSocket at all
        raw_connection(port, b""),  # says nothing
        raw_connection(port, message(0x01, unknown.bytes)),
        raw_connection(port, message(0x01, bad_mid_call.bytes) + message(0x42, b"??")),
    )
    await peer.heard.wait_spoken()
    greeting_frames = len(peer.heard.chunks)
    greeting_arrivals = list(peer.arrivals)
    speech = await synthesize(engine.tts, "Do you sell tomato plants?")
    peer.say(resample(speech, 16000, 8000))  # the caller asks, over 8 kHz slin
    async with asyncio.timeout(90):  # the agent answers (its whole utterance handed out)
        while sum(isinstance(e, AgentUtteranceEnd) for _, e in seen) < 2:
            await asyncio.sleep(0.05)
    await peer.heard.wait_spoken(quiet_s=0.5, after=greeting_frames)  # and it has played
    await peer.hang_up()

    # The greeting, sent as 8 kHz slin, is understood by Whisper...
    text = (await engine.stt.transcribe(peer.heard.audio16k(last=greeting_frames))).text
    assert len(words(text) & words(QUICK_WELCOME)) >= 4, text
    # ... and came paced in real time (20 ms a frame), not as a burst.
    frames = len(greeting_arrivals)
    assert frames > 50
    span = greeting_arrivals[-1] - greeting_arrivals[0]
    assert span >= 0.85 * (frames - 1) * 0.02, (span, frames)
    assert all(len(c) == 160 for _, c in peer.heard.chunks)

    record = await gw.store.wait_final("call_as_1", 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    assert (record.carrier, record.carrier_call_id) == ("asterisk", str(peer.call_uuid))
    assert [s for s, _ in record.status_history][-2:] == ["in_progress", "completed"]
    speakers = [e["speaker"] for e in record.transcript]
    assert speakers[:3] == ["agent", "caller", "agent"], record.transcript
    assert "tomato" in record.transcript[1]["text"].lower()  # the caller's audio got through
    assert record.recording_path is not None
    with wave.open(record.recording_path) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    # Caller left, agent right, on one timeline: each talks while the other is quiet.
    windows = audio[: audio.shape[0] // 160 * 160].reshape(-1, 160, 2).astype(np.float64)
    loud = np.sqrt((windows**2).mean(axis=1)) > 300  # per 20 ms, per channel
    caller, agent = loud[:, 0], loud[:, 1]
    assert agent.sum() > 100 and caller.sum() > 25  # greeting + answer; the question
    assert (caller & agent).sum() < 0.1 * min(caller.sum(), agent.sum())

    # Each bad socket was closed by the server with a reason on a failed record.
    garbage, silent, unknown_reply, mid_call_reply = bad
    assert garbage == b"" and silent == b""
    assert unknown_reply == message(0x00) and mid_call_reply.endswith(message(0x00))
    for fragment in ("expected the UUID message", "timeout: no data for 1 s", "0x42"):
        [failed] = await records_ending_with(gw, fragment)
        assert failed.status == CallStatus.FAILED
    [unknown_record] = [r for r in await gw.store.list() if r.carrier_call_id == str(unknown)]
    assert unknown_record.end_reason == "unknown agent_id None"
    assert (await gw.store.get("call_as_bad")).status == CallStatus.FAILED  # type: ignore[union-attr]
    assert "unknown message kind 0x42" in caplog.text
    assert len(gw.calls) == 0 and not gw._connections
