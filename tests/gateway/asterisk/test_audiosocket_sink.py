"""The AudioSocket call as the bridge's media sink, with a fake socket writer: the
agent's audio is paced at 20 ms a frame, and a barge-in stops it at once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

from gateway.asterisk.audiosocket.server import AudioSocketCall, AudioSocketGateway
from tests.gateway.asterisk.helpers import FakeWriter, gateway_parts, tone


async def test_audio_is_paced_and_barge_in_stops_sending(tmp_path: Path) -> None:
    gw = AudioSocketGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    writer = FakeWriter()
    call = AudioSocketCall(None, writer, gw)  # type: ignore[arg-type]
    pacer = asyncio.create_task(call._pace())
    try:
        for frame in tone(1.0):
            await call.play(frame)  # the whole second handed over at once
        assert 0.9 <= call.queued_s <= 1.0
        await asyncio.sleep(0.3)
        sent = [data for _, data in writer.messages]
        assert 10 <= len(sent) <= 20, len(sent)  # paced: about 15 frames in 0.3 s, not 50
        assert all(m[:3] == b"\x10\x01\x40" and len(m) == 323 for m in sent)
        times = [t for t, _ in writer.messages]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 0.015 < sum(gaps) / len(gaps) < 0.03

        await call.clear()  # barge-in: nothing more goes out
        n = len(writer.messages)
        await asyncio.sleep(0.1)
        assert len(writer.messages) == n and call.queued_s == 0
        await asyncio.wait_for(call.wait_for_playout(), 0.1)

        for frame in tone(0.1):
            await call.play(frame)
        await call.end_utterance(1)  # the tail goes out too
        await asyncio.wait_for(call.wait_for_playout(), 1.0)
        assert len(writer.messages) - n >= 5
    finally:
        pacer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pacer
