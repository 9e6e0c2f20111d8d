"""A `voxline serve` killed mid-call (SIGKILL): after a restart the call is final, with
what was said so far, a playable recording, its analysis and its delivery."""

from __future__ import annotations

import asyncio
import io
import sys
import wave
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.engine import async_url
from api.postcall.models import AnalysisJob
from api.server import BackgroundServer
from tests.api.conftest import _pg_create_database, _pg_drop_database
from tests.api.stubs.receiver import webhook_receiver
from tests.e2e.test_campaign_durability import Server, client

CALLER_LINES = [
    "Hi, I would like to book a teeth cleaning next week, please.",
    "Tuesday morning would be great for me.",
    "My name is Ana Lopez, that is L O P E Z.",
    "Could you also tell me how much the cleaning costs?",
    "And do you take my dental insurance?",
    "Thank you very much, that is all, goodbye.",
]


async def call_detail(api: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def analysis_state(url: str, call_id: str) -> str | None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return (
                await conn.execute(select(AnalysisJob.state).where(AnalysisJob.call_id == call_id))
            ).scalar_one_or_none()
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voxline.db'}"
        return
    url = await _pg_create_database()
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL cases skipped")
    yield url
    await _pg_drop_database(url)


@pytest.mark.parametrize("who", ["restarted", "survivor"])
async def test_a_call_whose_server_is_sigkilled_is_finalized_as_interrupted(
    db_url, tmp_path, who
) -> None:
    """``restarted``: the same server started again finds its predecessor's call at
    start-up; ``survivor``: a second process of the fleet, running all along, finds it
    through the heartbeats."""
    if who == "survivor" and db_url.startswith("sqlite"):
        pytest.skip("a fleet shares PostgreSQL")
    data = tmp_path / "data"
    b: Server | None = None
    async with _receiver() as (receiver, port):
        env = {
            "VOXLINE_ALLOW_PRIVATE_DELIVERY_TARGETS": "true",
            "VOXLINE_EGRESS_ALLOWED_PORTS": str(port),
            "VOXLINE_ANALYSIS_YIELD_TO_CALLS_S": "0",
            "VOXLINE_PROCESS_HEARTBEAT_S": "0.5",
        }
        a = Server(data, db_url, tmp_path / "a.log", env)
        try:
            await a.ready()
            if who == "survivor":
                b = Server(data, db_url, tmp_path / "b.log", env)
                await b.ready()
            async with client(a, data) as api:
                r = await api.post(
                    "/api/v1/agents",
                    json={
                        "name": "Kill test agent",
                        "prompt": {"identity": "You are a dental clinic receptionist."},
                        "welcome_message": "Hello, thanks for calling the clinic.",
                        "llm": {"max_tokens": 24},  # short replies: the first turn comes soon
                        "post_call_actions": [
                            {
                                "channel": "webhook",
                                "on_statuses": ["failed"],
                                "config": {"url": f"{receiver.base_url}/hook"},
                            }
                        ],
                    },
                )
                assert r.status_code == 201, r.text
                r = await api.post(
                    "/api/v1/calls/dispatch",
                    json={
                        "agent_id": r.json()["id"],
                        "to_number": "+15550190001",
                        "call_context": {"simulation": {"lines": CALLER_LINES, "ring_s": 0.1}},
                    },
                )
                assert r.status_code == 201, r.text
                call_id = r.json()["call_id"]
                # Mid-call: the caller has been heard and the agent has answered, and the
                # record already says so (checkpoints), while the call goes on.
                async with asyncio.timeout(120):
                    while True:
                        detail = await call_detail(api, call_id)
                        speakers = [line["speaker"] for line in detail["transcript"]]
                        if "caller" in speakers and detail["latency"]:  # a whole turn
                            break
                        assert detail["status"] in ("queued", "ringing", "in_progress"), detail
                        await asyncio.sleep(0.2)
                assert detail["status"] == "in_progress"
                said_before_kill, turns_before_kill = detail["transcript"], detail["latency"]
        finally:
            a.kill()
            if b is not None and sys.exc_info()[0] is not None:
                b.stop()
        if b is None:
            b = Server(data, db_url, tmp_path / "b.log", env)
        try:
            await b.ready()
            async with client(b, data) as api:
                async with asyncio.timeout(30):
                    while (detail := await call_detail(api, call_id))["status"] != "failed":
                        await asyncio.sleep(0.2)
                assert detail["end_reason"].startswith("interrupted: process "), detail
                assert detail["end_reason"].endswith("exited)"), detail  # no timeout wait
                # Everything said before the kill is on the record, in order.
                assert detail["transcript"][: len(said_before_kill)] == said_before_kill
                assert detail["latency"][: len(turns_before_kill)] == turns_before_kill
                assert detail["recording_url"], detail
                r = await api.get(f"/api/v1/calls/{call_id}/recording")
                assert r.status_code == 200
                with wave.open(io.BytesIO(r.content)) as w:
                    assert (w.getnchannels(), w.getframerate()) == (2, 8000)
                    frames = w.getnframes()
                    pcm = np.frombuffer(w.readframes(frames), dtype="<i2").reshape(-1, 2)
                # The header was repaired: it counts exactly the frames the file holds.
                assert frames * 4 == len(r.content) - 44 and frames > 8000
                caller, agent = np.abs(pcm[:, 0]).max(), np.abs(pcm[:, 1]).max()
                assert caller > 1000 and agent > 1000, (caller, agent)  # both sides heard
                # Post-call ran on it: the analysis, then the failed-call delivery.
                async with asyncio.timeout(120):
                    while await analysis_state(db_url, call_id) not in ("done", "failed"):
                        await asyncio.sleep(0.5)
                assert await analysis_state(db_url, call_id) == "done"
                [hook] = await receiver.wait_for(1, timeout=60)
                body = hook.json()
                assert body["event"] == "call.failed" and body["call_id"] == call_id, body
        finally:
            b.stop()


class _receiver:
    async def __aenter__(self) -> tuple[Any, int]:
        self.stub = webhook_receiver()
        self.server = BackgroundServer(self.stub.app)
        await self.server.start()
        self.stub.base_url = self.server.base_url
        return self.stub, self.server.port

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()
