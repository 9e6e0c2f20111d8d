"""A carrier whose messages arrive out of order, twice or not at all, over a real socket
against the real server: the call goes on and ends as the caller ended it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from gateway.calls import CallStatus
from gateway.twilio.media_stream import FRAME_BYTES
from gateway.twilio.media_stream_client import CarrierStream
from tests.gateway.conftest import LiveServer

pytestmark = pytest.mark.models

SILENCE = b"\xff" * FRAME_BYTES


async def test_a_reordered_repeated_and_lost_frame_does_not_end_the_call(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = "call_out_of_order"
    stream = CarrierStream(stream_sid="MZooo" + str(time.monotonic_ns()), call_sid="CAooo")
    token = await live.token(call_id)
    with caplog.at_level(logging.INFO):
        async with websockets.connect(live.media_url, close_timeout=2) as ws:
            await ws.send(stream.connected())
            await ws.send(stream.start({"token": token}))  # sequenceNumber 1
            media = [stream.media(SILENCE, 20 * i) for i in range(6)]  # 2..7
            # 2, 3, then 5 before 4 (overtaken), 5 again (a repeat), 6 never arrives.
            for message in (media[0], media[1], media[3], media[3], media[2], media[5]):
                await ws.send(message)
            await asyncio.sleep(0.3)  # the call is still up: no close from the server
            assert ws.close_code is None
            await ws.send(stream.stop())
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(15):
                    async for _ in ws:
                        pass
            assert ws.close_code == 1000
    record = await live.vox.store.wait_final(call_id, 15)
    assert record.status == CallStatus.COMPLETED and record.end_reason == "caller_hangup"
    # Counted and logged, once, beside the call's end (the record keeps them where the
    # store has the field: see test_call_bridge).
    assert "messages: 1 lost, 1 reordered, 1 duplicated" in caplog.text
