"""Service heartbeat in the shape Uptime Kuma's status pages read.

A background loop checks each monitor every ``interval_s`` and stores a beat;
``GET /api/status-page/heartbeat/all`` returns the last 100 beats per monitor and
the 24 h uptime ratio. Model monitors really run the model (a short STT, a
1-token LLM reply, a short TTS): a loaded model that no longer answers is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Request
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.db.models import Heartbeat

if TYPE_CHECKING:
    from api.services import Voxline

log = logging.getLogger(__name__)

DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3
BEATS_PER_MONITOR = 100

# Kuma monitor ids are integers; names are what a status page shows.
MONITORS: dict[int, tuple[str, str]] = {
    1: ("api", "API"),
    2: ("database", "Database"),
    3: ("media_gateway", "Phone media gateway"),
    4: ("stt", "Speech-to-text model"),
    5: ("llm", "Language model"),
    6: ("tts", "Text-to-speech model"),
    7: ("webrtc", "WebRTC gateway"),
}


CHECK_FAILED = "check failed (details in the server log)"


@dataclass
class Beat:
    status: int
    msg: str = ""
    ping: float | None = None


Check = Callable[[], Awaitable[Beat]]


async def _timed(fn: Callable[[], Awaitable[Any]], timeout: float) -> Beat:
    t = time.perf_counter()
    try:
        msg = await asyncio.wait_for(fn(), timeout)
    except TimeoutError:
        return Beat(DOWN, f"no answer within {timeout:.0f} s")
    except Exception:
        # The status page is public: the exception (hosts, paths, SQL) goes to the log only.
        log.exception("heartbeat check failed")
        return Beat(DOWN, CHECK_FAILED)
    return Beat(UP, msg or "", round((time.perf_counter() - t) * 1000, 1))


def build_checks(services: Voxline, sessions: async_sessionmaker) -> dict[str, Check]:
    async def api() -> Beat:
        return Beat(UP, "serving", 0.0)

    async def database() -> Beat:
        async def q() -> str:
            async with sessions() as db:
                await db.execute(text("SELECT 1"))
            return ""

        return await _timed(q, 5)

    async def media_gateway() -> Beat:
        phone = services.phone
        if not phone.accepting:
            return Beat(MAINTENANCE, "draining: not taking new calls")
        return Beat(UP, f"{len(phone.active)} active calls", 0.0)

    async def stt() -> Beat:
        engine = services.engine

        async def run() -> str:
            await engine.stt.transcribe(np.zeros(8000, dtype=np.int16))
            return ""

        if engine.stt is None:
            return Beat(PENDING, "loading")
        return await _timed(run, 10)

    async def llm() -> Beat:
        engine = services.engine

        async def run() -> str:
            model = engine.llm_for(services.default_llm_config)
            async for _ in model.stream([{"role": "user", "content": "ping"}], max_tokens=1):
                pass
            return ""

        return await _timed(run, 15)

    async def tts() -> Beat:
        engine = services.engine

        async def run() -> str:
            async for _ in engine.tts.synthesize("OK."):
                pass
            return ""

        if engine.tts is None:
            return Beat(PENDING, "loading")
        return await _timed(run, 10)

    async def webrtc() -> Beat:
        return Beat(UP, f"{len(services.webrtc.active)} active sessions", 0.0)

    return {
        "api": api,
        "database": database,
        "media_gateway": media_gateway,
        "stt": stt,
        "llm": llm,
        "tts": tts,
        "webrtc": webrtc,
    }


class HeartbeatMonitor:
    def __init__(
        self,
        sessions: async_sessionmaker,
        checks: dict[str, Check],
        *,
        interval_s: float = 60.0,
        cache_s: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._checks = checks
        self.interval_s = interval_s
        self.cache_s = cache_s
        self._task: asyncio.Task[None] | None = None
        self._cache: tuple[float, dict[str, Any]] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def beat_once(self) -> None:
        beats = {}
        for key, check in self._checks.items():
            try:
                beats[key] = await check()
            except Exception:  # a broken check is a down monitor, not a dead loop
                log.exception("heartbeat check %s failed", key)
                beats[key] = Beat(DOWN, CHECK_FAILED)
        now = datetime.now(UTC)
        async with self._sessions() as db:
            for key, beat in beats.items():
                db.add(
                    Heartbeat(
                        monitor=key, status=beat.status, msg=beat.msg, ping=beat.ping, time=now
                    )
                )
            # Keep 25 h: enough for the 24 h uptime ratio and the last 100 beats.
            await db.execute(delete(Heartbeat).where(Heartbeat.time < now - timedelta(hours=25)))
            await db.commit()
        self._cache = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat_once()
            except Exception:
                log.exception("heartbeat round failed")
            await asyncio.sleep(self.interval_s)

    async def snapshot(self) -> dict[str, Any]:
        if self._cache and time.monotonic() - self._cache[0] < self.cache_s:
            return self._cache[1]
        heartbeat_list: dict[str, list[dict[str, Any]]] = {}
        uptime: dict[str, float] = {}
        since = datetime.now(UTC) - timedelta(hours=24)
        async with self._sessions() as db:
            for monitor_id, (key, _name) in MONITORS.items():
                rows = (
                    await db.execute(
                        select(Heartbeat)
                        .where(Heartbeat.monitor == key)
                        .order_by(Heartbeat.time.desc(), Heartbeat.id.desc())
                        .limit(BEATS_PER_MONITOR)
                    )
                ).scalars()
                beats = [
                    {
                        "status": r.status,
                        "time": r.time.strftime("%Y-%m-%d %H:%M:%S"),
                        "msg": r.msg,
                        "ping": r.ping,
                    }
                    for r in rows
                ]
                heartbeat_list[str(monitor_id)] = beats[::-1]  # oldest first, as Kuma sends
                total, up = (
                    await db.execute(
                        select(
                            func.count(),
                            func.sum((Heartbeat.status == UP).cast(Heartbeat.status.type)),
                        ).where(Heartbeat.monitor == key, Heartbeat.time >= since)
                    )
                ).one()
                uptime[f"{monitor_id}_24"] = round((up or 0) / total, 4) if total else 0.0
        data = {"heartbeatList": heartbeat_list, "uptimeList": uptime}
        self._cache = (time.monotonic(), data)
        return data


router = APIRouter(prefix="/api/status-page", tags=["service"])


@router.get("/heartbeat/all")
async def heartbeat_all(request: Request) -> dict[str, Any]:
    return await request.app.state.heartbeat.snapshot()


@router.get("/monitors")
async def monitors() -> dict[str, str]:
    return {str(i): name for i, (_key, name) in MONITORS.items()}
