"""Control-plane fixtures: a real server on SQLite and on PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 on the dev and CI machines (trust auth). Each
test run creates its own database there and drops it afterwards; where no
PostgreSQL answers, the PostgreSQL cases are skipped with that reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings

PG_ADMIN_URL = os.environ.get("VOXLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"


async def _pg_create_database() -> str | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(
            PG_ADMIN_URL.replace("postgresql://", "postgres://"), timeout=3
        )
    except Exception:
        return None
    name = f"voxline_test_{uuid.uuid4().hex[:10]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def _pg_drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql://", "postgres://"), timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(request, tmp_path_factory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'voxline.db'}"
        return
    url = await _pg_create_database()
    if url is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: PostgreSQL cases skipped")
    try:
        yield url
    finally:
        await _pg_drop_database(url)


@dataclass
class Running:
    server: BackgroundServer
    app: object
    base_url: str
    api_key: str
    agent_id: str

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60)


@pytest.fixture(scope="session")
async def running(engine, database_url, tmp_path_factory) -> AsyncIterator[Running]:
    data_dir = tmp_path_factory.mktemp("data")
    settings = ServerSettings(
        engine=engine.settings,
        data_dir=str(data_dir),
        database_url=database_url,
        heartbeat_interval_s=3600,  # tests beat on demand
        campaign_tick_s=0.2,
        twilio_auth_token=TWILIO_AUTH_TOKEN,  # carrier webhooks are checked against it
    )
    app = create_app(settings, engine)
    server = BackgroundServer(app)
    await server.start()
    boot = app.state.bootstrap
    yield Running(server, app, server.base_url, boot.api_key, boot.agent_id)
    await server.stop()


@pytest.fixture
async def api(running) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as client:
        yield client
