"""Per-key token buckets (sans-I/O: the clock is passed in).

Each key's bucket holds up to ``capacity`` tokens (one minute's worth by default) and
refills at ``rate_per_minute / 60`` per second; a request takes one token. In process
(``KeyRateLimiter``), or with Redis configured shared by the fleet (``RedisRateLimiter``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    at: float


class KeyRateLimiter:
    def __init__(self, rate_per_minute: int, capacity: int | None = None) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.rate_per_s = rate_per_minute / 60.0
        self.capacity = float(capacity or rate_per_minute)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_id: str, now: float) -> float:
        """0.0 if the request may go; otherwise the seconds until one token is back."""
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(self.capacity, now)
        elapsed = max(0.0, now - bucket.at)
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate_per_s)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    def forget(self, key_id: str) -> None:
        """A revoked key's bucket is dropped (the table holds live keys only)."""
        self._buckets.pop(key_id, None)


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up, at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(wait_s)))


# One atomic step on the server's clock: refill, take, remember; the bucket expires
# once it would be full again anyway.
_TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or cap
local at = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same bucket per key, kept in Redis: every API process of a fleet takes from
    one bucket, so N replicas do not allow N times the rate. If Redis cannot be reached
    the process's own bucket (``fallback``) decides, and the outage is logged."""

    def __init__(self, url: str, rate_per_minute: int, prefix: str = "voxline:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.fallback = KeyRateLimiter(rate_per_minute)
        self._rate_per_s = rate_per_minute / 60.0
        self._capacity = float(rate_per_minute)
        self._prefix = f"{prefix}rate:"
        self._script = self._redis.register_script(_TAKE)

    async def take(self, key_id: str, now: float) -> float:
        try:
            wait = await self._script(
                keys=[self._prefix + key_id], args=[self._rate_per_s, self._capacity]
            )
        except Exception as exc:  # ConnectionError, timeout, a Redis without Lua
            log.warning("shared rate limit unreachable, using this process's: %s", exc)
            return self.fallback.take(key_id, now)
        return float(wait)

    async def aclose(self) -> None:
        await self._redis.aclose()
