"""The WebSocket-channel call as the bridge's media sink, with a fake socket: frames of
the channel's optimal size, MEDIA_XOFF holds them, FLUSH_MEDIA on barge-in, and the
goodbye confirmed by QUEUE_DRAINED."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.asterisk.websocket_channel.call import WebSocketChannelCall, WebSocketChannelGateway
from gateway.asterisk.websocket_channel.protocol import MediaStart
from tests.gateway.asterisk.helpers import FakeWebSocket, gateway_parts, tone

START = (
    "MEDIA_START connection_id:voxline channel:WebSocket/voxline/0x1 channel_id:17.1 "
    "format:slin16 optimal_frame_size:640 ptime:20"
)


def started_call(tmp_path: Path) -> tuple[WebSocketChannelCall, FakeWebSocket]:
    gw = WebSocketChannelGateway(**gateway_parts(None, tmp_path))  # type: ignore[arg-type]
    ws = FakeWebSocket()
    call = WebSocketChannelCall(ws, gw)  # type: ignore[arg-type]
    [start] = call.proto.receive_text(START)
    assert isinstance(start, MediaStart)
    call.setup_media(start)
    return call, ws


async def test_media_flow_control_barge_in_and_drain(tmp_path: Path) -> None:
    call, ws = started_call(tmp_path)
    call.bridge.session = object()  # type: ignore[assignment]  # _on_event wants a started call
    for frame in tone(0.2):
        await call.play(frame)
    assert len(ws.binaries) == 10 and all(len(b) == 640 for b in ws.binaries)
    assert 0.15 < call.queued_s <= 0.2

    for event in call.proto.receive_text("MEDIA_XOFF"):
        await call._on_event(event)
    for frame in tone(0.1):
        await call.play(frame)
    assert len(ws.binaries) == 10 and call.queued_s > 0.25  # held here, not sent
    for event in call.proto.receive_text("MEDIA_XON"):
        await call._on_event(event)
    assert len(ws.binaries) == 15

    await call.clear()  # barge-in
    assert ws.texts == ["FLUSH_MEDIA"] and call.queued_s == 0
    await asyncio.wait_for(call.wait_for_playout(), 0.1)

    for frame in tone(0.1):
        await call.play(frame)
    await call.end_utterance(1)
    assert ws.texts[-1] == "REPORT_QUEUE_DRAINED"
    waiting = asyncio.create_task(call.wait_for_playout())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    call.playout.clear()  # as if the driver had played it all
    for event in call.proto.receive_text("QUEUE_DRAINED"):
        await call._on_event(event)
    await asyncio.wait_for(waiting, 0.5)


async def test_a_stale_queue_drained_is_asked_again(tmp_path: Path) -> None:
    call, ws = started_call(tmp_path)
    call.bridge.session = object()  # type: ignore[assignment]
    for frame in tone(1.0):
        await call.play(frame)
    await call.end_utterance(1)
    # A QUEUE_DRAINED while a second of audio is still due is from an earlier report.
    for event in call.proto.receive_text("QUEUE_DRAINED"):
        await call._on_event(event)
    assert ws.texts == ["REPORT_QUEUE_DRAINED", "REPORT_QUEUE_DRAINED"]
    assert not call._drained.is_set()
