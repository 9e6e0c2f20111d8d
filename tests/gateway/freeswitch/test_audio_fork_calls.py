"""mod_audio_fork and jambonz listen calls end to end: the PBX's side on a real
WebSocket to a real server, the real engine; bad sockets alongside end only themselves."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import ConnectionClosed

from gateway.calls import CallStatus
from gateway.freeswitch.call import (
    AUDIO_FORK_PATH,
    JAMBONZ_PATH,
    AudioForkGateway,
    JambonzGateway,
    build_router,
)
from tests.gateway.asterisk.helpers import (
    QUICK_AGENT_ID,
    QUICK_WELCOME,
    gateway_parts,
    serving,
    words,
)
from tests.gateway.freeswitch.audio_fork_peer import AudioForkPeer
from voice_core.end_reasons import EndReason
from voice_core.engine import VoiceEngine
from voice_core.events import DtmfReceived, SessionEvent

pytestmark = pytest.mark.models


@pytest_asyncio.fixture(loop_scope="session")
async def forks(
    engine: VoiceEngine, tmp_path: Path
) -> AsyncIterator[tuple[AudioForkGateway, JambonzGateway, str]]:
    parts = gateway_parts(engine, tmp_path)
    fork = AudioForkGateway(**parts, start_timeout_s=1.0)
    jambonz = JambonzGateway(**parts, start_timeout_s=1.0)
    async with serving(build_router(fork), build_router(jambonz)) as server:
        yield fork, jambonz, f"ws://127.0.0.1:{server.port}"


async def raw_socket(url: str, *messages: str | bytes) -> tuple[int | None, str]:
    async with websockets.connect(url, close_timeout=2) as ws:
        for m in messages:
            await ws.send(m)
        try:
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


async def test_forked_calls_hear_the_greeting_and_bad_sockets_end_alone(
    forks: tuple[AudioForkGateway, JambonzGateway, str], engine: VoiceEngine
) -> None:
    fork_gw, jambonz_gw, base = forks
    seen: list[tuple[str, SessionEvent]] = []
    jambonz_gw.observers.append(lambda call_id, event: seen.append((call_id, event)))
    fs_uuid = str(uuid.uuid4())
    fork = AudioForkPeer(
        base + AUDIO_FORK_PATH,
        {"uuid": fs_uuid, "from": "1000", "to": "5000", "sampleRate": 8000,
         "agent_id": QUICK_AGENT_ID, "call_id": "call_fs_1"},
    )  # fmt: skip
    jambonz = AudioForkPeer(
        base + JAMBONZ_PATH,
        {
            "callSid": "ca9ae2ae-9f56-4ab1-9cd2-2bd2a0e6e5b1",
            "direction": "inbound",
            "from": "+15083084809",
            "to": "+15083728299",
            "sampleRate": 16000,
            "mixType": "mono",
            "metadata": {"agent_id": QUICK_AGENT_ID, "call_id": "call_jb_1"},
        },
        subprotocol="audio.jambonz.org",
        jambonz=True,
    )
    await fork.connect()
    await jambonz.connect()
    bad = await asyncio.gather(
        raw_socket(base + AUDIO_FORK_PATH, b"\x00" * 320),  # audio before the metadata
        raw_socket(base + AUDIO_FORK_PATH, "to=5000 from=1000"),  # not JSON
        raw_socket(base + JAMBONZ_PATH, json.dumps({"callSid": "x", "mixType": "mono"})),
    )
    await fork.heard.wait_spoken()
    await jambonz.heard.wait_spoken()
    await jambonz.send(json.dumps({"event": "dtmf", "dtmf": "5", "duration": "1600"}))
    await fork.hang_up()  # the caller hangs up: FreeSWITCH closes the socket
    async with asyncio.timeout(5):
        while not any(isinstance(e, DtmfReceived) for _, e in seen):
            await asyncio.sleep(0.02)
    assert await jambonz_gw.hangup("call_jb_1", EndReason.API_HANGUP)  # we hang up the other

    text = (await engine.stt.transcribe(fork.heard.audio16k())).text
    assert len(words(text) & words(QUICK_WELCOME)) >= 3, text  # 8 kHz
    text = (await engine.stt.transcribe(jambonz.heard.audio16k())).text
    assert len(words(text) & words(QUICK_WELCOME)) >= 4, text
    # The greeting came as a few playAudio chunks, the first the longer, and no killAudio.
    for peer in (fork, jambonz):
        plays = [m for m in peer.messages if m["type"] == "playAudio"]
        assert len(plays) >= 2 and peer.kills == 0
        sizes = [len(m["data"]["audioContent"]) for m in plays]
        assert sizes[0] >= max(sizes[1:-1], default=0)
    assert jambonz.ws.subprotocol == "audio.jambonz.org"
    assert fork.ws.subprotocol == "audio.drachtio.org"

    record = await fork_gw.store.wait_final("call_fs_1", 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    assert (record.carrier, record.carrier_call_id) == ("freeswitch", fs_uuid)
    assert (record.from_number, record.to_number) == ("1000", "5000")
    assert record.transcript[0]["speaker"] == "agent" and record.recording_path
    record = await jambonz_gw.store.wait_final("call_jb_1", 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "api_hangup"
    assert record.carrier == "jambonz" and jambonz.disconnect_received

    before, not_json, no_rate = bad
    assert before[0] == 1008 and "before the metadata" in before[1]
    assert not_json[0] == 1008 and "not JSON" in not_json[1]
    assert no_rate[0] == 1008 and "no sampleRate" in no_rate[1]
    assert len(fork_gw.calls) == 0
