"""Drives headless Chromium through one test call; runs INSIDE the test's network namespace.

    python -m tests.e2e.browser_driver --base-url http://127.0.0.1:PORT \
        --key-file DATA/demo_api_key --wav caller.wav --out OUTDIR [--listen-s 22]

Talks to Chromium over its DevTools protocol (a WebSocket on 127.0.0.1, no extra
package): opens the server's test-call page, types the API key, starts the call
with the fake microphone playing ``--wav``, records what the page receives with
MediaRecorder, hangs up, and writes ``received.webm`` and ``result.json`` (page
timings, data-channel messages, the call record from the API) into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

CHROMIUM_FLAGS = [
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
    "--autoplay-policy=no-user-gesture-required",
    # Without this, in a loopback-only namespace, Chromium gathers no candidate at all.
    "--allow-loopback-in-peer-connection",
    # Plain 127.0.0.1 candidates instead of mDNS names (aioice would multicast for those).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

START_JS = """
(async () => {
  const w = window.voxlineTest;
  const t0 = performance.now();
  window.__vx = { t0, messages: [], chunks: [], states: [], connectedMs: null, error: null };
  const vx = window.__vx;
  document.getElementById("api-key").value = %(key)s;
  w.call.addEventListener("stream", (e) => {
    vx.streamMs = performance.now() - t0;
    const rec = new MediaRecorder(e.detail.stream, { mimeType: "audio/webm;codecs=opus" });
    rec.ondataavailable = (ev) => { if (ev.data.size) vx.chunks.push(ev.data); };
    rec.start(250);
    vx.recorder = rec;
  });
  w.call.addEventListener("message", (e) => {
    vx.messages.push({ t: performance.now() - t0, ...e.detail.message });
  });
  w.call.addEventListener("state", (e) => vx.states.push([performance.now() - t0, e.detail.state]));
  const poll = setInterval(() => {
    const pc = w.call.pc;
    if (pc && pc.connectionState === "connected" && vx.connectedMs === null) {
      vx.connectedMs = performance.now() - t0;
      clearInterval(poll);
    }
  }, 5);
  w.root.querySelector("button").click();
  return "started";
})()
"""

STOP_JS = """
(async () => {
  const vx = window.__vx;
  const w = window.voxlineTest;
  if (vx.recorder && vx.recorder.state !== "inactive") {
    await new Promise((resolve) => { vx.recorder.onstop = resolve; vx.recorder.stop(); });
  }
  const callId = w.call.callId;
  w.root.querySelector("button").click();   // hang up
  const blob = new Blob(vx.chunks, { type: "audio/webm" });
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return JSON.stringify({
    callId, audio: btoa(binary), messages: vx.messages, states: vx.states,
    connectedMs: vx.connectedMs, streamMs: vx.streamMs,
    status: w.root.querySelector(".status").textContent,
  });
})()
"""


class DevTools:
    """The few DevTools-protocol calls this needs, over one page's WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {json.dumps(result['exceptionDetails'])[:800]}")
        return result["result"].get("value")


async def wait_healthy(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while True:
            try:
                r = await client.get("/healthz")
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {base_url} not healthy after {timeout:g} s")
            await asyncio.sleep(0.5)


def launch_chromium(wav: Path, profile: Path) -> tuple[subprocess.Popen, int]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    proc = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(profile.parent / "chromium.log", "wb"),
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("chromium did not start (see chromium.log)")
        time.sleep(0.1)
    return proc, int(port_file.read_text().split()[0])


async def drive(args: argparse.Namespace, key: str, wav: Path, work: Path) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=args.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        agent_id = args.agent or (await api.get("/api/v1/agents")).json()[0]["id"]
        proc, port = launch_chromium(wav, work / "profile")
        try:
            async with httpx.AsyncClient() as http:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page = next(t for t in targets if t["type"] == "page")
            async with websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as ws:
                cdp = DevTools(ws)
                await cdp.send("Page.enable")
                url = f"{args.base_url}/test-call/{agent_id}?raw_audio=1"
                await cdp.send("Page.navigate", url=url)
                for _ in range(200):
                    ready = await cdp.evaluate("document.readyState + ':' + !!window.voxlineTest")
                    if ready == "complete:true":
                        break
                    await asyncio.sleep(0.05)
                await cdp.evaluate(START_JS % {"key": json.dumps(key)})
                # Listen until the agent has finished its reply (its second transcript
                # line: greeting, answer), or for --listen-s at most.
                deadline = time.monotonic() + args.listen_s
                while time.monotonic() < deadline:
                    replies = await cdp.evaluate(
                        "window.__vx.messages.filter("
                        "m => m.type === 'transcript' && m.role === 'agent').length"
                    )
                    if replies >= args.agent_lines:
                        await asyncio.sleep(0.5)  # the last frames reach the recorder
                        break
                    await asyncio.sleep(0.2)
                page_result = json.loads(await cdp.evaluate(STOP_JS))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        call_id = page_result["callId"]
        call: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while call_id and time.monotonic() < deadline:
            call = (await api.get(f"/api/v1/calls/{call_id}")).json()
            if call.get("status") in ("completed", "failed"):
                break
            await asyncio.sleep(0.2)
    return {"agent_id": agent_id, "page": page_result, "call": call}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--wav", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--agent", default=None)
    parser.add_argument("--listen-s", type=float, default=40.0, help="longest call")
    parser.add_argument("--agent-lines", type=int, default=2, help="hang up after these")
    parser.add_argument("--server-timeout-s", type=float, default=120.0)
    args = parser.parse_args()
    # The server writes its first API key when it first starts: wait for it first.
    asyncio.run(wait_healthy(args.base_url, args.server_timeout_s))
    key = Path(args.key_file).read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="vx-chromium-"))
    try:
        result = asyncio.run(drive(args, key, Path(args.wav).resolve(), work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "received.webm").write_bytes(base64.b64decode(result["page"].pop("audio")))
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({"call_id": result["page"]["callId"], "status": result["call"].get("status")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
