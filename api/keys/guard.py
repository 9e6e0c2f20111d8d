"""What every authenticated request passes after its key is found: the key's scope, its
rate limit, and the operator's limits on the requests that start calls or save agents.

One ``KeyGuard`` per app (``guard_of``), built from the app's settings on first use.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import HTTPException, Request

from api.keys.limits import CallSlots, check_duration
from api.keys.ratelimit import KeyRateLimiter, RedisRateLimiter, retry_after_header
from api.keys.scopes import allowed
from api.live.feed import redis_url_from

DISPATCH_PATH = "/api/v1/calls/dispatch"
AGENTS_PATH = "/api/v1/agents"


class KeyGuard:
    def __init__(self, settings: Any, sessions: Any) -> None:
        self.settings = settings
        self.rates = KeyRateLimiter(settings.api_rate_per_minute)
        redis_url = redis_url_from(getattr(settings, "redis_url", None))
        self.shared_rates = (
            RedisRateLimiter(redis_url, settings.api_rate_per_minute, settings.live_channel_prefix)
            if redis_url
            else None
        )
        self.slots = CallSlots(sessions, settings.org_max_concurrent_calls)

    def check(self, key_id: str, scope: str, method: str, path: str, now: float) -> None:
        """Scope (403), then this process's rate (429 with Retry-After)."""
        if not allowed(scope, method, path):
            raise HTTPException(403, detail=f"this API key's scope ({scope}) does not allow this")
        if self.shared_rates is None:
            self._limit(self.rates.take(key_id, now))

    async def check_shared(self, key_id: str, now: float) -> None:
        if self.shared_rates is not None:
            self._limit(await self.shared_rates.take(key_id, now))

    def _limit(self, wait: float) -> None:
        if wait > 0:
            raise HTTPException(
                429,
                detail=f"rate limit: {self.settings.api_rate_per_minute} requests per minute "
                "per API key",
                headers={"Retry-After": retry_after_header(wait)},
            )

    @asynccontextmanager
    async def request(
        self, key_id: str, org_id: str, scope: str, request: Request
    ) -> AsyncIterator[None]:
        method, path = request.method.upper(), request.url.path.rstrip("/")
        now = time.monotonic()
        self.check(key_id, scope, method, path, now)
        await self.check_shared(key_id, now)
        async with AsyncExitStack() as stack:
            if method == "POST" and path == DISPATCH_PATH:
                await stack.enter_async_context(self.slots.admit(org_id))
            elif _saves_agent(method, path):
                check_duration(await _json(request), self.settings.max_call_duration_s)
            yield


def _saves_agent(method: str, path: str) -> bool:
    if method == "POST" and path == AGENTS_PATH:
        return True
    rest = path.removeprefix(AGENTS_PATH + "/")
    return method in ("PUT", "PATCH") and rest != path and "/" not in rest


async def _json(request: Request) -> Any:
    # FastAPI has read and parsed the body before it solves dependencies; this is its cache.
    try:
        return await request.json()
    except Exception:
        return None


def guard_of(app: Any) -> KeyGuard:
    guard = getattr(app.state, "key_guard", None)
    if guard is None:
        guard = app.state.key_guard = KeyGuard(app.state.settings, app.state.db_sessions)
    return guard
