"""What the PBX transport tests share: the gateway's pieces, a listening agent, what a
test peer heard, and a real server for the WebSocket transports.

Used by tests/gateway/asterisk and tests/gateway/freeswitch.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI

from api.server import BackgroundServer
from gateway.agents import InMemoryAgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import InMemoryCallStore
from voice_core.audio.resample import resample
from voice_core.config import AgentConfig, EndCallConfig, LLMConfig
from voice_core.engine import VoiceEngine

QUICK_AGENT_ID = "quick"
QUICK_WELCOME = "Hello, you have reached the garden centre. How can I help?"


def quick_agents() -> InMemoryAgentDirectory:
    agents = InMemoryAgentDirectory()
    agents.add(
        QUICK_AGENT_ID,
        AgentConfig(
            name="test",
            system_prompt="You answer phone questions in one short sentence.",
            welcome_message=QUICK_WELCOME,
            llm=LLMConfig(max_tokens=24, temperature=0.2),
            end_call=EndCallConfig(end_call_tool=False, silence_timeout_s=60),
        ),
    )
    return agents


def gateway_parts(engine: VoiceEngine, tmp_path: Path) -> dict[str, Any]:
    """The shared pieces every transport gateway takes (what api/app.py hands them)."""
    return {
        "engine": engine,
        "store": InMemoryCallStore(),
        "recordings_dir": tmp_path / "recordings",
        "calls": CallRegistry(),
        "agents": quick_agents(),
    }


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


@dataclass
class Heard:
    """Agent audio as the far end played it: (play time, samples at ``rate``)."""

    rate: int
    chunks: list[tuple[float, np.ndarray]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def add(self, samples: np.ndarray) -> None:
        self.chunks.append((time.monotonic() - self.t0, samples))

    @property
    def seconds(self) -> float:
        return sum(c.size for _, c in self.chunks) / self.rate

    @property
    def last_at(self) -> float | None:
        return self.chunks[-1][0] if self.chunks else None

    def audio16k(self, first: int = 0, last: int | None = None) -> np.ndarray:
        """What was heard (chunks ``first`` to ``last``), at 16 kHz."""
        chunks = [c for _, c in self.chunks[first:last]]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return resample(np.concatenate(chunks), self.rate, 16000)

    async def wait_spoken(
        self, quiet_s: float = 1.2, timeout: float = 60.0, after: int = 0
    ) -> None:
        """Until the agent has said something (more than ``after`` chunks) and then been
        quiet for ``quiet_s``."""
        async with asyncio.timeout(timeout):
            while True:
                last = self.last_at
                quiet = last is not None and time.monotonic() - self.t0 - last > quiet_s
                if quiet and len(self.chunks) > after:
                    return
                await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(*routers: APIRouter) -> AsyncIterator[BackgroundServer]:
    """A real uvicorn server on loopback serving ``routers``."""
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    server = BackgroundServer(app)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class FakeWebSocket:
    """Enough of Starlette's WebSocket for a call's media sink: what was sent, in order."""

    def __init__(self, query: dict[str, str] | None = None) -> None:
        self.sent: list[str | bytes] = []
        self.sent_at: list[float] = []
        self.query_params = dict(query or {})
        self.headers: dict[str, str] = {}
        self.scope: dict[str, Any] = {"subprotocols": []}
        self.client = ("127.0.0.1", 40000)
        self.closed: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        self.sent.append(text)
        self.sent_at.append(time.monotonic())

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)
        self.sent_at.append(time.monotonic())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    @property
    def texts(self) -> list[str]:
        return [m for m in self.sent if isinstance(m, str)]

    @property
    def binaries(self) -> list[bytes]:
        return [m for m in self.sent if isinstance(m, bytes)]


def tone(seconds: float, rate: int = 16000, hz: float = 440.0) -> list[np.ndarray]:
    """A tone as 20 ms engine frames (int16)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    step = rate // 50
    return [samples[i : i + step] for i in range(0, samples.size, step)]


class FakeSession:
    """What a call's caller side hands the engine: 20 ms frames and digits."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.digits: list[str] = []

    def push_audio(self, frame: np.ndarray) -> None:
        assert frame.dtype == np.int16 and frame.shape == (320,)
        self.frames.append(frame)

    def push_dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)


def dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / samples.size)


class FakeWriter:
    """Enough of an asyncio StreamWriter for the AudioSocket sink: what was written, when."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, bytes]] = []

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000)

    def write(self, data: bytes) -> None:
        self.messages.append((time.monotonic(), data))

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass
