"""The dashboard in real headless Chromium (DevTools protocol), against a real server.

Plain HTTP pages on 127.0.0.1 place no WebRTC call, so no network namespace is
needed. While a simulated phone call runs, its transcript appears in the active
calls view; the finished call's log entry plays its recording and draws the
latency waterfall; a campaign's progress bar advances; the agent editor shows a
422 per field. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.browser_driver import DevTools
from tests.voxline.conftest import QUICK_AGENT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1360,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make install / scripts/install-system.sh)"
)


def _launch(tmp: Path) -> tuple[subprocess.Popen, str]:
    """Start Chromium and return (the process, its page's DevTools WebSocket URL)."""
    profile = tmp / "profile"
    with open(tmp / "chromium.log", "wb") as log:
        proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"chromium did not start (see {tmp / 'chromium.log'})")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
    return proc, next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]


async def _until(cdp: DevTools, expression: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await cdp.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _screenshot(cdp: DevTools, path: Path) -> None:
    shot = await cdp.send("Page.captureScreenshot", format="png")
    await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


async def test_dashboard_live_calls_log_campaigns_and_agents(running, tmp_path) -> None:
    api = running.client()
    agent_id = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
    proc, page_ws = await asyncio.to_thread(_launch, tmp_path)
    try:
        async with websockets.connect(page_ws, max_size=2**26) as ws:
            cdp = DevTools(ws)
            await cdp.send("Page.enable")
            await cdp.send("Page.navigate", url=f"{running.base_url}/dashboard")
            await _until(
                cdp, "document.readyState === 'complete' && !!window.voxlineDashboard", 20, "page"
            )
            # A wrong key is refused on the login form.
            await cdp.evaluate(
                "document.getElementById('login-key').value = 'vx_wrong';"
                "document.getElementById('login-form').requestSubmit()"
            )
            await _until(
                cdp, "document.getElementById('login-error').textContent", 10, "login error"
            )
            await cdp.evaluate(
                f"document.getElementById('login-key').value = {json.dumps(running.api_key)};"
                "document.getElementById('login-form').requestSubmit()"
            )
            await _until(cdp, "window.voxlineDashboard.feed.connected", 10, "live feed")
            assert await cdp.evaluate("sessionStorage.getItem('voxline.apiKey')") == running.api_key

            # --- a call in progress: its transcript appears in the active-calls view
            r = await api.post(
                "/api/v1/calls/dispatch",
                json={
                    "agent_id": agent_id,
                    "to_number": "+15550178801",
                    "call_context": {
                        "simulation": {
                            "outcome": "answer",
                            "lines": [
                                "Hi, can I book a cleaning on Tuesday?",
                                "Great, thank you, bye.",
                            ],
                        }
                    },
                },
            )
            call_id = r.json()["call_id"]
            card = f"document.querySelector('[data-call-id=\"{call_id}\"]')"
            await _until(cdp, f"!!{card}", 20, "the call's card")
            caller_line = await _until(
                cdp,
                f"[...{card}.querySelectorAll('.line.user.final')]"
                ".map(e => e.textContent).join('|')",
                60,
                "a caller line in the card",
            )
            # The caller's words, as the ear heard them: Piper samples the caller's voice
            # afresh each run, and one word in a line may come out wrong ("a planing").
            heard = set(re.findall(r"[a-z]+", caller_line.lower()))
            assert len(heard & {"book", "cleaning", "tuesday"}) >= 2, caller_line
            await _until(cdp, f"!!{card}.querySelector('.line.agent')", 30, "an agent line")
            status = (await api.get(f"/api/v1/calls/{call_id}")).json()["status"]
            await _screenshot(cdp, tmp_path / "live.png")
            events = await cdp.evaluate(
                f"window.voxlineDashboard.events.filter(e => e.call_id === '{call_id}')"
                ".map(e => e.type + ':' + (e.final === false ? 'partial' : ''))"
            )
            assert "transcript:partial" in events  # partials streamed while the caller spoke
            assert status == "in_progress", "the transcript showed while the call was live"

            # --- the finished call in the log: recording and latency waterfall
            for _ in range(600):
                if (await api.get(f"/api/v1/calls/{call_id}")).json()["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
            await cdp.evaluate("location.hash = '#calls'")
            row = f"document.querySelector('#calls-table tr[data-call-id=\"{call_id}\"]')"
            await _until(cdp, f"!!{row}", 10, "the call's row")
            await cdp.evaluate(f"{row}.click()")
            bars = await _until(
                cdp,
                "[...document.querySelectorAll('#latency-chart rect[data-stage]')]"
                ".map(r => r.dataset.stage)",
                10,
                "latency bars",
            )
            assert {"endpointing wait", "STT", "LLM first token", "response"} <= set(bars)
            await _until(
                cdp, "document.getElementById('recording')?.dataset.loaded", 10, "recording"
            )
            assert await cdp.evaluate(
                "document.getElementById('recording').src.startsWith('blob:')"
            )
            await _screenshot(cdp, tmp_path / "call-log.png")

            # --- a campaign's progress bar advances
            await cdp.evaluate("location.hash = '#campaigns'")
            r = await api.post(
                "/api/v1/bulk-call",
                json={
                    "name": "Dashboard reminders",
                    "agent_id": agent_id,
                    "concurrency": 1,
                    "retry": {"on": []},
                    "contacts": [
                        {
                            "phone_number": f"+155501788{i:02d}",
                            "simulation": {"outcome": "busy", "ring_s": 0.6},
                        }
                        for i in range(10, 15)
                    ],
                },
            )
            bulk_id = r.json()["id"]
            bar = f"document.querySelector('[data-campaign-id=\"{bulk_id}\"] .bar')"
            await _until(cdp, f"!!{bar}", 10, "the campaign's bar")
            seen = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now = int(await cdp.evaluate(f"{bar}.getAttribute('aria-valuenow')"))
                if not seen or seen[-1] != now:
                    seen.append(now)
                if now == 3 and not (tmp_path / "campaign.png").exists():
                    await _screenshot(cdp, tmp_path / "campaign.png")
                if now == 5:
                    break
                await asyncio.sleep(0.05)
            assert seen[-1] == 5 and len(seen) >= 3, seen  # it moved in steps, not at once
            assert seen == sorted(seen)

            # --- the agent editor shows the server's 422 per field
            await cdp.evaluate("location.hash = '#agents'")
            await _until(cdp, "document.querySelectorAll('#agent-list li').length", 10, "agents")
            await cdp.evaluate(
                "document.getElementById('agent-json').value = JSON.stringify("
                "{name: '', endpointing: {vad_aggressiveness: 9}});"
                "document.getElementById('agent-save').click()"
            )
            fields = await _until(
                cdp,
                "[...document.querySelectorAll('#agent-errors li')].map(li => li.dataset.field)",
                10,
                "field errors",
            )
            assert "name" in fields and "endpointing.vad_aggressiveness" in fields
            assert await cdp.evaluate(
                "document.getElementById('agent-test-call').href.includes('/test-call/')"
            )
    finally:
        proc.kill()
        proc.wait(10)
        await api.aclose()
    print(f"\nscreenshots: {tmp_path}")
