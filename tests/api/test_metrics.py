"""GET /metrics after a real call: the latency histograms, the call's end, the levels;
closed unless the operator opens it (a token, or a listener of its own); scraped by a
real Prometheus where Debian's ``prometheus`` is installed."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.server import BackgroundServer
from api.settings import ServerSettings

TOKEN = "scrape-secret-1"


def parse(text: str) -> dict[str, list]:
    """metric sample name -> [(labels, value), ...]"""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if labels.items() <= lab.items())


@pytest.fixture(scope="module")
async def server(engine, tmp_path_factory) -> AsyncIterator[tuple[BackgroundServer, object]]:
    data = tmp_path_factory.mktemp("metrics")
    settings = ServerSettings(
        engine=engine.settings,
        data_dir=str(data),
        database_url=f"sqlite:///{data / 'voxline.db'}",
        heartbeat_interval_s=3600,
        metrics_token=TOKEN,
        metrics_port=0,  # a listener of its own too, on a free loopback port
    )
    app = create_app(settings, engine)
    srv = BackgroundServer(app)
    await srv.start()
    yield srv, app
    await srv.stop()


async def scrape(url: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, headers=headers)


async def test_metrics_after_a_real_call(server) -> None:
    srv, app = server
    boot = app.state.bootstrap
    headers = {"Authorization": f"Bearer {boot.api_key}"}
    async with httpx.AsyncClient(base_url=srv.base_url, headers=headers, timeout=60) as api:
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={
                "agent_id": boot.agent_id,
                "to_number": "+15550177001",
                "call_context": {"simulation": {"lines": ["Hi, what are your opening hours?"]}},
            },
        )
        assert r.status_code in (200, 201, 202), r.text
        call_id = r.json()["call_id"]
        async with asyncio.timeout(60):
            while (await api.get(f"/api/v1/calls/{call_id}")).json()["status"] != "in_progress":
                await asyncio.sleep(0.1)
        # While the call is up it counts as an active phone call.
        samples = parse((await scrape(srv.base_url + "/metrics")).text)
        assert value(samples, "voxline_active_calls", transport="phone") == 1
        async with asyncio.timeout(240):  # a loaded machine: the reply can be slow
            while True:
                samples = parse((await scrape(srv.base_url + "/metrics")).text)
                if value(samples, "voxline_turn_response_seconds_count") >= 1:
                    break
                await asyncio.sleep(0.5)
        await api.post(f"/api/v1/calls/{call_id}/hangup")
        async with asyncio.timeout(60):
            while (await api.get(f"/api/v1/calls/{call_id}")).json()["status"] not in (
                "completed",
                "cancelled",
            ):
                await asyncio.sleep(0.3)

    r = await scrape(srv.base_url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = parse(r.text)
    assert value(samples, "voxline_turn_response_seconds_count", transport="phone") >= 1
    assert value(samples, "voxline_turn_voice_to_voice_seconds_count", transport="phone") >= 1
    assert value(samples, "voxline_turn_response_seconds_sum") > 0
    assert value(samples, "voxline_turn_stage_seconds_count", stage="llm_first_token") >= 1
    assert value(samples, "voxline_turn_stage_seconds_count", stage="tts_first_audio") >= 1
    # The +Inf bucket holds every turn: a histogram Prometheus can take quantiles of.
    inf = value(samples, "voxline_turn_response_seconds_bucket", transport="phone", le="+Inf")
    assert inf == value(samples, "voxline_turn_response_seconds_count", transport="phone")
    assert value(samples, "voxline_calls_ended_total", transport="phone") == 1
    assert value(samples, "voxline_active_calls") == 0  # the call is over
    assert "stt_decode" in {lab["queue"] for lab, _ in samples["voxline_queue_depth"]}
    assert "postcall_outbox" in {lab["queue"] for lab, _ in samples["voxline_queue_depth"]}
    # The finished call's analysis is a job: pending, running or done, never missing.
    assert sum(v for _, v in samples["voxline_analysis_jobs"]) == 1
    assert {lab["job"] for lab, _ in samples["voxline_background_job_lag_seconds"]} == {
        "analysis",
        "delivery",
    }
    assert {lab["stage"] for lab, _ in samples["voxline_model_errors_total"]} >= {"llm", "stt"}

    # The listener of its own serves the same registry (and also asks for the token).
    listener = app.state.metrics_listener.base_url + "/metrics"
    assert (await scrape(listener, token=None)).status_code == 401
    assert value(parse((await scrape(listener)).text), "voxline_calls_ended_total") == 1


async def test_metrics_are_closed_without_the_token(server) -> None:
    srv, _ = server
    r = await scrape(srv.base_url + "/metrics", token=None)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (await scrape(srv.base_url + "/metrics", token="wrong")).status_code == 401


async def test_metrics_are_off_unless_the_operator_opens_them(engine, tmp_path) -> None:
    settings = ServerSettings(engine=engine.settings, data_dir=str(tmp_path))
    app = create_app(settings, engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and app.state.metrics_listener is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_real_prometheus_scrapes_the_listener(server, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    _, app = server
    target = app.state.metrics_listener.base_url.removeprefix("http://")
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: voxline\n"
        "    authorization: {type: Bearer, credentials: " + TOKEN + "}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        query = f"http://127.0.0.1:{port}/api/v1/query"
        async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(60):
            while True:
                try:
                    r = await client.get(query, params={"query": "voxline_queue_depth"})
                    result = r.json()["data"]["result"] if r.status_code == 200 else []
                except httpx.HTTPError:
                    result = []
                if result:
                    break
                await asyncio.sleep(0.5)
            up = (await client.get(query, params={"query": "up"})).json()["data"]["result"]
        queues = {series["metric"]["queue"] for series in result}
        assert {"stt_decode", "postcall_outbox", "analysis"} <= queues
        assert up[0]["value"][1] == "1"  # scraped with the token, parsed by Prometheus
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
