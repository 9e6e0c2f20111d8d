"""WebRTC / WhatsApp fixtures: one real server (SQLite) with loopback ICE candidates,
a local Graph API stub, and an API key + quick agent.

The WhatsApp and aiortc-client tests run in this process: with the loopback switch
on, both peers gather 127.0.0.1 only, so all media stays on loopback. The browser
test runs its own server inside a network namespace (see test_browser_call.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from gateway.webrtc.ice import use_loopback_candidates
from tests.gateway.webrtc import graph_stub
from tests.gateway.webrtc.graph_stub import GraphStub

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
WHATSAPP_NUMBER = "+15550100777"
QUICK_WELCOME = "Hello, you have reached the garden centre. How can I help?"

QUICK_AGENT = {
    "name": "Garden centre",
    "prompt": {
        "identity": "You answer questions for the Green Leaf garden centre.",
        "knowledge": "Open every day from 9 am to 6 pm.",
        "style": "One short sentence.",
    },
    "welcome_message": QUICK_WELCOME,
    "llm": {"max_tokens": 24, "temperature": 0.2},
    "end_call": {"end_call_tool": False, "silence_timeout_s": 60},
}


@dataclass
class RealtimeServer:
    server: BackgroundServer
    app: object
    base_url: str
    api_key: str
    agent_id: str
    graph: GraphStub

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def realtime(engine, tmp_path_factory) -> AsyncIterator[RealtimeServer]:
    graph = GraphStub()
    graph_server = BackgroundServer(graph.app())
    await graph_server.start()
    data_dir = tmp_path_factory.mktemp("webrtc-data")
    settings = ServerSettings(
        **{
            "engine": engine.settings,
            "data_dir": str(data_dir),
            "database_url": None,
            "heartbeat_interval_s": 3600,
            "webrtc_loopback_candidates": True,
            "webrtc_connect_timeout_s": 10,
            "whatsapp_app_secret": APP_SECRET,
            "whatsapp_verify_token": VERIFY_TOKEN,
            "whatsapp_phone_number_id": graph_stub.PHONE_NUMBER_ID,
            "whatsapp_access_token": graph_stub.ACCESS_TOKEN,
            "whatsapp_graph_base_url": graph_server.base_url,
            "whatsapp_graph_version": graph_stub.VERSION,
        }
    )
    app = create_app(settings, engine)
    server = BackgroundServer(app)
    await server.start()
    boot = app.state.bootstrap
    headers = {"Authorization": f"Bearer {boot.api_key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:
        agent = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()
        r = await api.post(
            "/api/v1/phone-numbers", json={"number": WHATSAPP_NUMBER, "agent_id": agent["id"]}
        )
        assert r.status_code == 201, r.text
    try:
        yield RealtimeServer(server, app, server.base_url, boot.api_key, agent["id"], graph)
    finally:
        await server.stop()
        await graph_server.stop()
        use_loopback_candidates(False)


@pytest.fixture
async def api(realtime) -> AsyncIterator[httpx.AsyncClient]:
    async with realtime.client() as client:
        yield client
