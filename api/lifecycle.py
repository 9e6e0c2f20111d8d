"""Readiness and graceful drain.

On SIGTERM a process stops taking new work at once (readiness turns false, the
campaign dispatcher stops claiming contacts, the gateways refuse new calls),
lets its active calls finish for up to ``drain_timeout_s``, hangs up whatever is
left (those calls end normally: their records, outcomes and deliveries are
written), and only then lets the HTTP server stop. Work it never started stays in
the database for the other processes: campaign contacts are claimed only when
dialed, and deliveries are leased rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

if TYPE_CHECKING:
    from api.campaigns.dispatcher import CampaignDispatcher
    from api.services import Voxline

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self,
        services: Voxline,
        dispatcher: CampaignDispatcher,
        sessions: async_sessionmaker,
        *,
        redis_url: str | None = None,
    ) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self.sessions = sessions
        self.redis_url = redis_url
        self.draining = False
        self.drain_started: float | None = None

    def active_calls(self) -> int:
        return len(self.services.calls)  # phone, browser and WhatsApp

    def begin_drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        self.drain_started = time.monotonic()
        self.dispatcher.accepting = False
        self.services.phone.accepting = False
        self.services.webrtc.accepting = False
        log.info("draining: no new calls or contacts; %d active calls", self.active_calls())

    async def drain(self, timeout_s: float) -> int:
        """Wait for active calls to end; hang up the rest at the deadline. Returns how
        many calls had to be cut."""
        self.begin_drain()
        deadline = time.monotonic() + timeout_s
        while self.active_calls() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        left = self.active_calls()
        if left:
            log.warning("drain timeout: hanging up %d calls", left)
            await self.services.phone.hangup_all("server_draining")
            await self.services.webrtc.close_all("server_draining")
        log.info("drained in %.1f s", time.monotonic() - (self.drain_started or time.monotonic()))
        return left

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        checks["draining"] = "yes" if self.draining else "no"
        try:
            async with self.sessions() as db:
                await asyncio.wait_for(db.execute(text("SELECT 1")), 3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        if self.redis_url:
            try:
                import redis.asyncio as redis

                client = redis.from_url(self.redis_url)
                try:
                    await asyncio.wait_for(client.ping(), 2)
                finally:
                    await client.aclose()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"down: {type(exc).__name__}"
        engine = self.services.engine
        media = "media" in self.services.settings.roles
        models_ready = not media or (engine.stt is not None and engine.tts is not None)
        checks["models"] = "ok" if models_ready else "loading"
        ok = (
            not self.draining
            and checks["database"] == "ok"
            and checks.get("redis", "ok") == "ok"
            and models_ready
        )
        return ok, checks
