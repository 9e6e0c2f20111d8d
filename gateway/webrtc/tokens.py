"""Short-lived, single-use session tokens: a public page holds one of these, never an API key.

The page owner's backend mints a token with its API key (``POST /api/v1/sessions``)
and hands it to the browser; the browser spends it on exactly one offer. Tokens
live in memory: they last a minute by default, so a restart that forgets them
only costs the caller a retry. Sans-I/O apart from the clock, which is injectable.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOKEN_PREFIX = "vxs_"
MAX_OUTSTANDING = 10_000  # bounds memory if a key mints tokens nobody spends


class TokenError(Exception):
    """Why a token was refused (unknown, expired or already used)."""


@dataclass(frozen=True)
class SessionGrant:
    token: str
    org_id: str
    agent_id: str
    expires_at: float  # on the store's clock
    context: dict[str, Any] = field(default_factory=dict)


class SessionTokens:
    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._live: dict[str, SessionGrant] = {}
        # Spent tokens are remembered until they would have expired, so a replay
        # is told "already used" rather than "unknown" (clearer for page owners).
        self._spent: dict[str, float] = {}

    def mint(
        self, org_id: str, agent_id: str, context: dict[str, Any] | None = None
    ) -> SessionGrant:
        self._sweep()
        if len(self._live) >= MAX_OUTSTANDING:
            raise TokenError(f"too many unused session tokens (max {MAX_OUTSTANDING})")
        grant = SessionGrant(
            token=TOKEN_PREFIX + secrets.token_urlsafe(24),
            org_id=org_id,
            agent_id=agent_id,
            expires_at=self._clock() + self.ttl_s,
            context=dict(context or {}),
        )
        self._live[grant.token] = grant
        return grant

    def redeem(self, token: object) -> SessionGrant:
        """The grant for ``token``, which can never be redeemed again."""
        self._sweep()
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            raise TokenError("invalid session token")
        if token in self._spent:
            raise TokenError("session token already used")
        grant = self._live.pop(token, None)
        if grant is None:
            raise TokenError("invalid or expired session token")
        self._spent[token] = grant.expires_at
        return grant

    def _sweep(self) -> None:
        now = self._clock()
        for token in [t for t, g in self._live.items() if g.expires_at <= now]:
            del self._live[token]
        for token in [t for t, exp in self._spent.items() if exp <= now]:
            del self._spent[token]
