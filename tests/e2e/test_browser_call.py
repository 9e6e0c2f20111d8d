"""A real headless Chromium calls an agent from the test-call page, over WebRTC.

Everything runs in a fresh network namespace with only loopback up (created
here, deleted after): the voxline server (a subprocess, SQLite in a tmp dir,
loopback ICE candidates on) and Chromium, driven over its DevTools protocol by
``browser_driver`` (also in the namespace). Chromium's fake microphone plays a
question synthesized with the engine's TTS; the page records what it receives
with MediaRecorder; this test decodes that and transcribes it with the
engine's STT: the agent's greeting and an answer to the question must be there,
and the caller's words must be in the call's transcript.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from av import AudioResampler
from av import open as av_open

from tests.e2e.netns import NetNamespace, unavailable_reason
from tests.gateway.webrtc.peer import speak, transcribe
from voice_core.audio.resample import resample
from voice_core.audio.wav import write_wav

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.models]

REPO = Path(__file__).resolve().parents[2]
PORT = 8765  # the namespace is new: nothing else listens in it
QUESTION = "Hello, what are your opening hours on Saturday?"
QUESTION_AT_S = 7.0  # after the demo agent's greeting (about 4 s)
LISTEN_S = 40.0  # at most: the driver hangs up once the agent has answered


def _skip_reason() -> str | None:
    if reason := unavailable_reason():
        return reason
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (make install installs it as root)"
    return None


def decode_webm(path: Path) -> np.ndarray:
    """Opus-in-WebM from MediaRecorder -> int16 mono 16 kHz."""
    resampler = AudioResampler(format="s16", layout="mono", rate=16000)
    chunks = []
    with av_open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


async def test_browser_calls_the_agent_over_webrtc(engine, tmp_path):
    if reason := _skip_reason():
        pytest.skip(reason)
    question = await speak(engine, QUESTION)
    lead = np.zeros(int(QUESTION_AT_S * 16000), np.int16)
    tail = np.zeros(int((LISTEN_S + 5) * 16000), np.int16)
    caller = np.concatenate([lead, question, tail])
    wav = tmp_path / "caller.wav"
    write_wav(wav, resample(caller, 16000, 48000), 48000)
    data_dir, out = tmp_path / "data", tmp_path / "out"
    env = {
        **os.environ,
        "VOXLINE_DATA_DIR": str(data_dir),
        "VOXLINE_WEBRTC_LOOPBACK_CANDIDATES": "true",
        "VOXLINE_HEARTBEAT_INTERVAL_S": "3600",
        "PYTHONPATH": str(REPO),
    }
    env.pop("VOXLINE_DATABASE_URL", None)
    base_url = f"http://127.0.0.1:{PORT}"
    server_log = tmp_path / "server.log"
    ns = NetNamespace()
    try:
        ns.create()
    except subprocess.CalledProcessError as exc:  # root, but no CAP_SYS_ADMIN (a container)
        pytest.skip(f"cannot create a network namespace: {exc.stderr!r}")
    with ns, server_log.open("wb") as log:
        server = ns.popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(PORT)],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            driver = await asyncio.to_thread(
                ns.run,
                [sys.executable, "-m", "tests.e2e.browser_driver", "--base-url", base_url,
                 "--key-file", str(data_dir / "demo_api_key"), "--wav", str(wav),
                 "--out", str(out), "--listen-s", str(LISTEN_S)],
                env=env, cwd=REPO, capture_output=True, text=True, timeout=240,
            )
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    logs = server_log.read_text(errors="replace")[-3000:]
    assert driver.returncode == 0, f"driver:\n{driver.stderr[-3000:]}\nserver:\n{logs}"
    result = json.loads((out / "result.json").read_text())
    page, call = result["page"], result["call"]

    # What the browser received: the greeting, then an answer to the question.
    received = decode_webm(out / "received.webm")
    assert received.size > 16000 * 5, f"only {received.size / 16000:.1f} s of audio received"
    heard = await transcribe(engine, received[: 16000 * 29])
    agent_lines = [
        m for m in page["messages"] if m["type"] == "transcript" and m["role"] == "agent"
    ]
    assert len(agent_lines) >= 2, (page["messages"], logs)
    reply_text = agent_lines[1]["text"]
    # The reply's audio starts where the page was told the agent speaks again.
    speaking = [t for t, s in page["states"] if s == "speaking"]
    reply_at_s = max(0.0, (speaking[1] - page["streamMs"]) / 1000 - 0.3) if len(speaking) > 1 else 0
    reply_heard = await transcribe(engine, received[int(reply_at_s * 16000) :][: 16000 * 20])
    thinking = [t for t, s in page["states"] if s == "thinking"]
    print(
        f"\nChromium over WebRTC: connected {page['connectedMs']:.0f} ms after the click; "
        f"thinking -> speaking {speaking[1] - thinking[0]:.0f} ms (page clock)"
        if len(speaking) > 1 and thinking
        else f"\nChromium: connected {page['connectedMs']:.0f} ms"
    )
    print(f"heard: {heard!r}\nreply heard: {reply_heard!r}\nreply said: {reply_text!r}")
    assert "dental" in heard.lower() or "smile" in heard.lower(), heard
    assert len(_words(reply_heard) & _words(reply_text)) >= 2, (reply_heard, reply_text)

    # The call record: finished, with the caller's words, metrics and a recording.
    assert call["status"] == "completed", call
    said = " ".join(e["text"].lower() for e in call["transcript"] if e["speaker"] == "caller")
    assert "saturday" in said or "hours" in said, call["transcript"]
    assert call["latency"], call
