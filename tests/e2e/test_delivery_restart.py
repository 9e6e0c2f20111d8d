"""The outbox survives a crash: deliveries pending (and one mid-send) when the server
dies are all delivered by the next server on the same database."""

from __future__ import annotations

import asyncio

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from tests.api.conftest import _pg_create_database, _pg_drop_database
from tests.api.stubs.base import serving
from tests.api.stubs.receiver import webhook_receiver


async def _fresh_database(database_url: str, tmp_path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restart.db'}"
    url = await _pg_create_database()
    assert url is not None
    return url


async def test_pending_deliveries_are_sent_after_a_kill_and_restart(
    engine, database_url, tmp_path
) -> None:
    url = await _fresh_database(database_url, tmp_path)
    settings = ServerSettings(
        engine=engine.settings,
        data_dir=str(tmp_path / "data"),
        database_url=url,
        heartbeat_interval_s=3600,
        allow_private_delivery_targets=True,
        delivery_backoff_base_s=0.2,
        delivery_backoff_max_s=0.5,
        delivery_lease_s=1.0,  # the send cut off by the kill is retaken after this
        delivery_timeout_s=30.0,
    )
    # The receiver leaves the first request hanging (it is in flight when we kill the
    # server) and is down (503) after that, until it "comes back" below.
    receiver = webhook_receiver(["hang"], default=503)
    try:
        async with serving(receiver):
            first = create_app(settings, engine)
            server = BackgroundServer(first)
            await server.start()
            key = first.state.bootstrap.api_key
            async with _client(server.base_url, key) as api:
                r = await api.post(
                    "/api/v1/agents",
                    json={
                        "name": "Restart",
                        "post_call_actions": [
                            {
                                "channel": "webhook",
                                "on_statuses": ["busy"],
                                "config": {"url": receiver.base_url + "/hook"},
                            }
                        ],
                    },
                )
                agent_id = r.json()["id"]
                calls = []
                for i in range(3):
                    r = await api.post(
                        "/api/v1/calls/dispatch",
                        json={
                            "agent_id": agent_id,
                            "to_number": f"+1555018000{i}",
                            "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
                        },
                    )
                    calls.append(r.json()["call_id"])
                # every delivery tried at least once (one still hanging) before the kill
                async with asyncio.timeout(30):
                    while (
                        len({r.headers["x-voxline-idempotency-key"] for r in receiver.received}) < 3
                    ):
                        await asyncio.sleep(0.05)
            # The kill: workers stop mid-flight (the hanging send is abandoned with its
            # lease held, nothing recorded), then the server goes.
            await first.state.postcall.stop()
            await server.stop()

            receiver.release.set()  # type: ignore[attr-defined]
            receiver.default = 200  # type: ignore[attr-defined]
            second = create_app(settings, engine)
            server = BackgroundServer(second)
            await server.start()
            try:
                async with _client(server.base_url, key) as api:
                    async with asyncio.timeout(30):
                        while True:
                            rows = (await api.get("/api/v1/deliveries")).json()
                            if len(rows) == 3 and all(d["state"] == "delivered" for d in rows):
                                break
                            await asyncio.sleep(0.1)
            finally:
                await server.stop()
    finally:
        if not url.startswith("sqlite"):
            await _pg_drop_database(url)
    assert sorted(d["call_id"] for d in rows) == sorted(calls)
    for d in rows:
        assert d["attempt_log"][-1]["status_code"] == 200
        assert all(a["status_code"] == 503 for a in d["attempt_log"][:-1])
    delivered_keys = {r.headers["x-voxline-idempotency-key"] for r in receiver.received}
    assert delivered_keys == {d["id"] for d in rows}


def _client(base_url: str, key: str | None):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
