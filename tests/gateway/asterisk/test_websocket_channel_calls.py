"""Asterisk WebSocket-channel calls end to end: the driver's side on a real WebSocket to
a real server, the real engine; bad sockets alongside end only themselves."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.asterisk.websocket_channel.call import (
    WEBSOCKET_CHANNEL_PATH,
    WebSocketChannelGateway,
    build_router,
)
from gateway.calls import CallStatus
from tests.gateway.asterisk.helpers import (
    QUICK_AGENT_ID,
    QUICK_WELCOME,
    gateway_parts,
    serving,
    words,
)
from tests.gateway.asterisk.websocket_channel_peer import WebSocketChannelPeer
from voice_core.end_reasons import EndReason
from voice_core.engine import VoiceEngine


@pytest_asyncio.fixture(loop_scope="session")
async def channel(
    engine: VoiceEngine, tmp_path: Path
) -> AsyncIterator[tuple[WebSocketChannelGateway, str]]:
    gateway = WebSocketChannelGateway(**gateway_parts(engine, tmp_path), start_timeout_s=1.0)
    async with serving(build_router(gateway)) as server:
        yield gateway, f"ws://127.0.0.1:{server.port}{WEBSOCKET_CHANNEL_PATH}"


async def raw_socket(
    url: str, *messages: str | bytes, headers: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """Send ``messages``, read until the server closes; how it closed."""
    async with websockets.connect(url, additional_headers=headers, close_timeout=2) as ws:
        for m in messages:
            await ws.send(m)
        try:
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


@pytest.mark.models
async def test_calls_hear_the_greeting_and_bad_sockets_end_alone(
    channel: tuple[WebSocketChannelGateway, str], engine: VoiceEngine
) -> None:
    gw, url = channel
    slin = WebSocketChannelPeer(f"{url}?agent_id={QUICK_AGENT_ID}&call_id=call_ws_1&shop=north")
    ulaw = WebSocketChannelPeer(
        f"{url}?agent_id={QUICK_AGENT_ID}&call_id=call_ws_2",
        format="ulaw",
        sample_rate=8000,
        frame_bytes=160,
        channel_id="1761245643.2",
        json_control=True,
    )
    await slin.connect()
    await ulaw.connect()
    bad = await asyncio.gather(
        raw_socket(url, b"\x00" * 640),  # media before MEDIA_START
        raw_socket(url, "MEDIA_START connection_id:x channel:y format:opus optimal_frame_size:0"),
        raw_socket(url),  # says nothing
    )
    await slin.heard.wait_spoken()
    await ulaw.heard.wait_spoken()
    async with asyncio.timeout(10):
        while not (slin.drained_sent and ulaw.drained_sent):
            await asyncio.sleep(0.05)
    await slin.hang_up()  # the caller hangs up: Asterisk closes the socket
    assert await gw.hangup("call_ws_2", EndReason.API_HANGUP)  # we hang up the other

    text = (await engine.stt.transcribe(slin.heard.audio16k())).text
    assert len(words(text) & words(QUICK_WELCOME)) >= 4, text
    text = (await engine.stt.transcribe(ulaw.heard.audio16k())).text  # mu-law, JSON control
    assert len(words(text) & words(QUICK_WELCOME)) >= 3, text
    for peer in (slin, ulaw):
        assert "REPORT_QUEUE_DRAINED" in peer.commands and "FLUSH_MEDIA" not in peer.commands

    record = await gw.store.wait_final("call_ws_1", 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    assert (record.carrier, record.carrier_call_id) == ("asterisk", "1761245643.1")
    assert record.transcript[0]["speaker"] == "agent" and record.recording_path
    record = await gw.store.wait_final("call_ws_2", 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "api_hangup"
    assert ulaw.hangup_received and ulaw.close_code == 1000

    before_start, opus, silent = bad
    assert before_start[0] == 1008 and "before MEDIA_START" in before_start[1]
    assert opus[0] == 1008 and "'opus' is not supported" in opus[1]
    assert silent[0] == 1000 and "waiting for MEDIA_START" in silent[1]
    failed = [r for r in await gw.store.list() if r.status == CallStatus.FAILED]
    assert len(failed) == 3
    assert len(gw.calls) == 0


async def test_credentials_are_checked_before_accepting(tmp_path: Path) -> None:
    parts = gateway_parts(None, tmp_path)  # type: ignore[arg-type]  # refused before any engine use
    gw = WebSocketChannelGateway(
        **parts, username="asterisk", password="s3cret", start_timeout_s=0.5
    )
    async with serving(build_router(gw)) as server:
        url = f"ws://127.0.0.1:{server.port}{WEBSOCKET_CHANNEL_PATH}"
        for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"asterisk:x").decode()}):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 403
        good = {"Authorization": "Basic " + base64.b64encode(b"asterisk:s3cret").decode()}
        code, reason = await raw_socket(url, headers=good)
        assert code == 1000 and "waiting for MEDIA_START" in reason  # accepted, then timed out
    assert len(await gw.store.list()) == 1  # the accepted one left a record; refused ones none
