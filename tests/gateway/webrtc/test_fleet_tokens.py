"""Browser-call session tokens across a fleet: two app instances on one database, as two
replicas behind the shipped nginx. A token minted on one is spent on the other, and
only once, even when both get an offer with it at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aioice.ice
import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from tests.gateway.webrtc.conftest import QUICK_AGENT
from tests.gateway.webrtc.peer import TestPeer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def replicas(engine, tmp_path) -> AsyncIterator[list[tuple[BackgroundServer, str]]]:
    """Two servers, one SQLite database and data directory; (server, API key) each."""
    get_host_addresses = aioice.ice.get_host_addresses  # restored: a process-wide switch
    servers: list[BackgroundServer] = []
    try:
        for _ in range(2):
            settings = ServerSettings(
                engine=engine.settings,
                data_dir=str(tmp_path),
                heartbeat_interval_s=3600,
                webrtc_loopback_candidates=True,
                webrtc_connect_timeout_s=10,
            )
            server = BackgroundServer(create_app(settings, engine))
            await server.start()  # the first migrates and bootstraps; the second joins
            servers.append(server)
        key = (tmp_path / "demo_api_key").read_text().strip()
        yield [(s, key) for s in servers]
    finally:
        for server in servers:
            await server.stop()
        aioice.ice.get_host_addresses = get_host_addresses


def api(server: BackgroundServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


async def test_a_token_minted_on_one_replica_is_spent_on_the_other_once(replicas) -> None:
    (a, key), (b, _) = replicas
    async with api(a, key) as on_a, api(b, key) as on_b:
        agent_id = (await on_a.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
        r = await on_a.post("/api/v1/sessions", json={"agent_id": agent_id})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        peer, again = TestPeer(), TestPeer()
        try:
            body = {"sdp": await peer.offer(), "type": "offer", "token": token}
            r = await on_b.post("/webrtc/offer", json=body)
            assert r.status_code == 200, r.text  # per process, B had never heard of it
            call_id = r.json()["call_id"]
            await peer.accept(r.json()["sdp"])
            await peer.wait_connected()
            assert call_id in b.app.services.calls and call_id not in a.app.services.calls
            # Spent: on the replica that minted it too.
            body = {"sdp": await again.offer(), "type": "offer", "token": token}
            r = await on_a.post("/webrtc/offer", json=body)
            assert r.status_code == 401 and "already used" in r.json()["detail"], r.text
        finally:
            await peer.close()
            await again.close()
        await b.app.services.hang_up(call_id, "test_over")
        call = (await on_a.get(f"/api/v1/calls/{call_id}")).json()
        assert call["status"] == "completed" and call["call_context"] == {}


async def test_two_replicas_racing_on_one_token_start_one_call(replicas) -> None:
    (a, key), (b, _) = replicas
    async with api(a, key) as on_a, api(b, key) as on_b:
        agent_id = (await on_a.get("/api/v1/agents")).json()[0]["id"]
        peers = [TestPeer(), TestPeer()]
        try:
            for _ in range(3):
                token = (await on_b.post("/api/v1/sessions", json={"agent_id": agent_id})).json()
                offers = [
                    {"sdp": await p.offer(), "type": "offer", "token": token["token"]}
                    for p in peers
                ]
                answers = await asyncio.gather(
                    on_a.post("/webrtc/offer", json=offers[0]),
                    on_b.post("/webrtc/offer", json=offers[1]),
                )
                assert sorted(r.status_code for r in answers) == [200, 401], [
                    r.text for r in answers
                ]
                for replica, r in zip((a, b), answers, strict=True):
                    if r.status_code == 200:
                        await replica.app.services.webrtc.hangup(r.json()["call_id"], "test_over")
                for p in peers:
                    await p.close()
                peers = [TestPeer(), TestPeer()]
        finally:
            for p in peers:
                await p.close()
