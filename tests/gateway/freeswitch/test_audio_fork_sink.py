"""The forked call as the bridge's media sink, with a fake socket: playAudio chunks
(the first of an utterance the longer), killAudio on barge-in, and jambonz's playDone
confirming the goodbye."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from gateway.freeswitch.audio_fork import Metadata
from gateway.freeswitch.call import AudioForkCall, AudioForkGateway, JambonzGateway
from tests.gateway.asterisk.helpers import FakeWebSocket, gateway_parts, tone


def started_call(
    tmp_path: Path, gateway: type[AudioForkGateway] = AudioForkGateway, rate: int = 16000
) -> tuple[AudioForkCall, FakeWebSocket]:
    gw = gateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    ws = FakeWebSocket()
    call = AudioForkCall(ws, gw)  # type: ignore[arg-type]
    [meta] = call.proto.receive_text(json.dumps({"sampleRate": rate, "uuid": "fs-1"}))
    assert isinstance(meta, Metadata)
    call.setup_media(meta)
    call.bridge.session = object()  # type: ignore[assignment]  # as if started
    return call, ws


def chunk_seconds(ws: FakeWebSocket, rate: int) -> list[float]:
    plays = [json.loads(t) for t in ws.texts if json.loads(t)["type"] == "playAudio"]
    return [len(base64.b64decode(p["data"]["audioContent"])) / 2 / rate for p in plays]


async def test_chunks_and_barge_in(tmp_path: Path) -> None:
    call, ws = started_call(tmp_path)
    for frame in tone(1.2):
        await call.play(frame)
    chunks = chunk_seconds(ws, 16000)
    assert [round(c, 1) for c in chunks] == [0.5, 0.3, 0.3]
    assert 1.1 < call.queued_s < 1.3  # 1.1 s sent and still playing, 0.1 s being filled

    await call.clear()  # barge-in: stop what plays, drop the chunk being filled
    assert json.loads(ws.texts[-1]) == {"type": "killAudio"}
    assert call.queued_s == 0
    await asyncio.wait_for(call.wait_for_playout(), 0.1)

    for frame in tone(0.2):
        await call.play(frame)
    await call.end_utterance(1)  # the utterance's tail goes out whole
    assert abs(chunk_seconds(ws, 16000)[-1] - 0.2) < 0.03
    assert len(chunk_seconds(ws, 16000)) == 4


async def test_jambonz_play_done_confirms_playout(tmp_path: Path) -> None:
    call, ws = started_call(tmp_path, JambonzGateway, rate=8000)
    for frame in tone(0.6):
        await call.play(frame)
    await call.end_utterance(1)
    assert len(chunk_seconds(ws, 8000)) == 2 and call.plays_pending == 2
    waiting = asyncio.create_task(call.wait_for_playout())
    for _ in range(2):
        await asyncio.sleep(0.02)
        assert not waiting.done()
        for event in call.proto.receive_text('{"type": "playDone"}'):
            call._on_event(event)
    await asyncio.wait_for(waiting, 0.5)
