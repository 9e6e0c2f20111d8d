"""Campaign durability across processes: SIGKILL and restart, and two dispatchers
sharing one PostgreSQL database. Real `voxline serve` processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import _pg_create_database, _pg_drop_database

ROOT = Path(__file__).resolve().parents[2]
BUCKETS = ("queued", "in_progress", "completed", "failed", "busy", "no_answer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self, data_dir: Path, db_url: str, log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {
            **os.environ,
            "VOXLINE_DATA_DIR": str(data_dir),
            "VOXLINE_DATABASE_URL": db_url,
            "VOXLINE_CAMPAIGN_LEASE_S": "2",
            "VOXLINE_CAMPAIGN_TICK_S": "0.2",
            "VOXLINE_HEARTBEAT_INTERVAL_S": "3600",
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    async def ready(self, timeout: float = 120) -> None:
        async with asyncio.timeout(timeout), httpx.AsyncClient() as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                try:
                    if (await c.get(f"{self.base}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voxline.db'}"
        return
    url = await _pg_create_database()
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL cases skipped")
    yield url
    await _pg_drop_database(url)


def client(server: Server, data_dir: Path) -> httpx.AsyncClient:
    key = (data_dir / "demo_api_key").read_text().strip()
    return httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


async def make_campaign(
    api: httpx.AsyncClient, n: int, concurrency: int, ring_s: float, retry: dict | None = None
) -> int:
    agent_id = (await api.get("/api/v1/agents")).json()[0]["id"]
    contacts = [
        {"phone_number": f"+1555018{i:04d}", "simulation": {"outcome": "busy", "ring_s": ring_s}}
        for i in range(n)
    ]
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "durable",
            "agent_id": agent_id,
            "contacts": contacts,
            "concurrency": concurrency,
            "retry": retry or {"on": []},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def wait_completed(api: httpx.AsyncClient, bulk_id: int, timeout: float) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            live = (await api.get(f"/api/v1/bulk-call/{bulk_id}/live-status")).json()
            s = live["summary"]
            assert sum(s[b] for b in BUCKETS) == s["total_contacts"]
            if live["campaign_status"] == "completed":
                return s
            await asyncio.sleep(0.3)


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def check_calls(
    api: httpx.AsyncClient, bulk_id: int, concurrency: int, retried: bool = False
) -> dict:
    contacts = (await api.get(f"/api/v1/bulk-call/{bulk_id}/contacts?limit=1000")).json()["data"]
    calls = (await api.get(f"/api/v1/calls?bulk_call_id={bulk_id}&limit=200")).json()["data"]
    by_id = {c["id"]: c for c in calls}
    for contact in contacts:
        assert contact["state"] == "busy", contact  # none skipped: every contact was dialed
        attempts = [by_id[i] for i in contact["call_ids"]]
        for earlier, later in itertools.pairwise(attempts):
            # never dialed twice at once: an attempt starts after the previous one ended
            assert ts(earlier["ended_at"]) <= ts(later["created_at"]), (earlier, later)
            if not retried:  # without a retry policy only an orphan is dialed again
                assert earlier["end_reason"].startswith("orphaned"), earlier
    # never more than `concurrency` calls of the campaign in flight at once
    edges = sorted(
        [(ts(c["created_at"]), 1) for c in calls] + [(ts(c["ended_at"]), -1) for c in calls],
        key=lambda e: (e[0], e[1]),
    )
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= concurrency, peak
    return {c["phone_number"]: len(c["call_ids"]) for c in contacts}


async def test_sigkill_mid_campaign_then_restart_resumes_without_loss(db_url, tmp_path) -> None:
    data = tmp_path / "data"
    a = Server(data, db_url, tmp_path / "a.log")
    try:
        await a.ready()
        async with client(a, data) as api:
            bulk_id = await make_campaign(api, n=12, concurrency=3, ring_s=1.5)
            async with asyncio.timeout(30):
                while (await api.get(f"/api/v1/bulk-call/{bulk_id}/live-status")).json()["summary"][
                    "in_progress"
                ] < 3:
                    await asyncio.sleep(0.1)
    finally:
        a.kill()  # SIGKILL: no drain, calls in flight are orphaned
    b = Server(data, db_url, tmp_path / "b.log")
    try:
        await b.ready()
        async with client(b, data) as api:
            summary = await wait_completed(api, bulk_id, timeout=90)
            assert summary["busy"] == 12 and summary["total_contacts"] == 12
            attempts = await check_calls(api, bulk_id, concurrency=3)
            assert sum(1 for n in attempts.values() if n == 2) >= 3  # the orphans, redialed
    finally:
        b.stop()


async def test_two_dispatchers_on_postgresql_share_a_campaign(tmp_path) -> None:
    url = await _pg_create_database()
    if url is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL cases skipped")
    data = tmp_path / "data"
    # Process A may only fill 2 of the organization's slots: it is woken at once by its
    # own calls ending and would otherwise win every race; B takes what A leaves.
    a = Server(data, url, tmp_path / "a.log", {"VOXLINE_ORG_MAX_CONCURRENT_CALLS": "2"})
    b = None
    try:
        await a.ready()  # first start migrates and bootstraps; then the second joins
        b = Server(data, url, tmp_path / "b.log")
        await b.ready()
        async with client(a, data) as api_a, client(b, data) as api_b:
            bulk_id = await make_campaign(
                api_a,
                n=20,
                concurrency=4,
                ring_s=0.5,
                retry={"on": ["busy"], "max_retries": 1, "delay_s": 0.3},
            )
            summary = await wait_completed(api_b, bulk_id, timeout=120)
            assert summary["busy"] == 20
            attempts = await check_calls(api_b, bulk_id, concurrency=4, retried=True)
            assert set(attempts.values()) == {2}, attempts  # each dialed as the policy says
    finally:
        a.stop()
        if b is not None:
            b.stop()
        await _pg_drop_database(url)
    dialers = {
        name: log.read_text().count("dialed by")
        for name, log in (("a", tmp_path / "a.log"), ("b", tmp_path / "b.log"))
    }
    assert dialers["a"] + dialers["b"] == 40
    assert dialers["a"] > 0 and dialers["b"] > 0, dialers  # both processes took contacts
