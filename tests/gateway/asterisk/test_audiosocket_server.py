"""The AudioSocket server's own lifecycle, no engine needed: it listens on loopback,
refuses while draining, forgets stale registrations, and closes what is pending when
it stops."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from gateway.asterisk.audiosocket.server import AudioSocketGateway
from gateway.calls import CallStatus
from tests.gateway.asterisk.helpers import gateway_parts


def gateway(tmp_path: Path, **kwargs: object) -> AudioSocketGateway:
    return AudioSocketGateway(**gateway_parts(None, tmp_path), port=0, **kwargs)  # type: ignore[arg-type]


async def test_defaults_bind_loopback_and_stop_closes_pending_sockets(tmp_path: Path) -> None:
    assert AudioSocketGateway.__dataclass_fields__["host"].default == "127.0.0.1"
    gw = gateway(tmp_path, uuid_timeout_s=30.0)
    await gw.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.bound_port)
    await asyncio.sleep(0.1)  # connected, says nothing yet
    started = time.monotonic()
    await gw.stop()
    assert await asyncio.wait_for(reader.read(), 2.0) == b""  # closed by the server
    assert time.monotonic() - started < 2.0
    writer.close()
    [record] = await gw.store.list()
    assert record.status == CallStatus.COMPLETED and record.end_reason == "server_shutdown"


async def test_refuses_while_draining(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    gw.accepting = False
    await gw.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.bound_port)
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
    finally:
        await gw.stop()
    assert await gw.store.list() == []


def test_expected_uuids_are_claimed_once_and_expire(tmp_path: Path) -> None:
    gw = gateway(tmp_path)
    first, second = uuid.uuid4(), uuid.uuid4()
    gw.expect(str(first), agent_id="quick", call_id="call_1", context={"shop": "north"})
    claimed = gw.claim(first)
    assert (claimed.agent_id, claimed.call_id, claimed.context) == (
        "quick",
        "call_1",
        {"shop": "north"},
    )
    assert gw.claim(first).agent_id is None  # used once
    gw.expect_ttl_s = -1.0  # registered already stale
    gw.expect(second, agent_id="quick")
    assert gw.claim(second).agent_id is None
