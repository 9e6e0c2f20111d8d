"""A real server for the SDK and live-feed tests (the control plane's fixture).

SQLite only: these tests exercise the client side (SDK, WebSocket feed); the
server's database code runs on SQLite and PostgreSQL in tests/api. Fewer real
calls keep the suite short on a shared 2-core machine.
"""

from __future__ import annotations

import pytest

from tests.api import conftest as api_conftest

running = api_conftest.running  # the control plane's server fixture, registered here too

QUICK_AGENT = {
    "name": "Live test agent",
    "prompt": {"identity": "You book dental cleanings.", "style": "Answer in five words."},
    "welcome_message": "Hi, dental clinic.",
    "llm": {"max_tokens": 16},
    "end_call": {"silence_timeout_s": 6},
}


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory):
    yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'voxline.db'}"


@pytest.fixture(scope="session")
async def quick_agent(running) -> str:
    async with running.client() as api:
        r = await api.post("/api/v1/agents", json=QUICK_AGENT)
        assert r.status_code == 201, r.text
        return r.json()["id"]
