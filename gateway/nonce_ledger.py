"""Single use across a fleet: stream-token nonces remembered in Redis.

``StreamTokens`` remembers the nonces it redeemed in its own process. Behind a load
balancer, a token the carrier was given (or one copied out of a carrier's logs) could
otherwise be redeemed once on each replica within its short life. With Redis
configured, every replica also claims the nonce with ``SET NX EX``: the first wins.

If Redis cannot be reached the claim is allowed and logged: the process's own memory
still refuses a replay on that process, and a Redis outage does not stop every call.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

log = logging.getLogger(__name__)


class NonceLedger(Protocol):
    async def claim(self, nonce: str, ttl_s: float) -> bool:
        """True the first time ``nonce`` is claimed anywhere in the fleet."""
        ...


class RedisNonceLedger:
    def __init__(self, url: str, prefix: str = "voxline:") -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)
        self._prefix = f"{prefix}stream-nonce:"

    async def claim(self, nonce: str, ttl_s: float) -> bool:
        try:
            won = await self._redis.set(
                self._prefix + nonce, b"1", nx=True, ex=max(1, math.ceil(ttl_s))
            )
        except Exception as exc:  # redis.ConnectionError, a timeout: see the module doc
            log.warning("stream-token ledger unreachable, using this process's only: %s", exc)
            return True
        return bool(won)

    async def aclose(self) -> None:
        await self._redis.aclose()
