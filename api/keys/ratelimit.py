"""Per-key token buckets (sans-I/O: the clock is passed in).

Each key's bucket holds up to ``capacity`` tokens (one minute's worth by default) and
refills at ``rate_per_minute / 60`` per second; a request takes one token. In process:
with several API processes behind a balancer each enforces the rate on its own share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
