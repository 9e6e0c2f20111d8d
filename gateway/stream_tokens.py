"""Stream tokens: what opens a media stream. Server-minted, signed, single-use, short-lived.

A token names the call, the organization and the agent (and whether the stream's own
``customParameters`` may reach the call context). Whoever connects to a media
stream presents one in ``start``; without a valid one the stream is refused before
anything is loaded or written. The carrier gets it inside the TwiML we return, so
only a party that asked us (a signed carrier webhook, our own dialer) ever holds one.

Format: ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`` where the
payload is a compact JSON list ``[version, call, org, agent, expires, nonce, flags]``.
Sans-I/O: the clock is injected, and the used-nonce memory is in this object.

Fleet note: every process needs the same secret (``VOXLINE_STREAM_TOKEN_SECRET``) to
accept the others' tokens. Nonces are remembered in-process, and with Redis
configured also in a shared ledger (``nonce_ledger``), so a token opens one stream
in the whole fleet (``redeem_shared``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.nonce_ledger import NonceLedger

log = logging.getLogger(__name__)

_VERSION = 1
_FLAG_PARAMETERS = 1  # the stream's customParameters may reach the call context
# Ids that may become file names and log fields: letters, digits, '_' and '-', bounded.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
_MAX_TOKEN_CHARS = 1024


def valid_id(value: object) -> bool:
    """A call, organization or agent id in the one format paths and logs accept."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


class TokenError(Exception):
    """A token that does not open a stream; ``reason`` says why (for the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StreamClaims:
    call_id: str
    org_id: str
    agent_id: str
    expires_at: float
    nonce: str
    pass_parameters: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    def __init__(
        self,
        secret: bytes | str,
        *,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the stream token secret must be at least 16 bytes")
        self._key = key
        self.ttl_s = ttl_s
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce -> expiry, forgotten once expired
        self.ledger: NonceLedger | None = None  # the fleet's, set by the control plane

    @classmethod
    def random(cls, *, ttl_s: float = 60.0, clock: Callable[[], float] = time.time) -> StreamTokens:
        """With a per-process secret: tokens are valid in this process only."""
        return cls(secrets.token_bytes(32), ttl_s=ttl_s, clock=clock)

    def mint(
        self,
        *,
        call_id: str,
        org_id: str,
        agent_id: str,
        pass_parameters: bool = False,
        ttl_s: float | None = None,
    ) -> str:
        for name, value in (("call_id", call_id), ("org_id", org_id), ("agent_id", agent_id)):
            if not valid_id(value):
                raise ValueError(f"{name} {value!r} is not a valid id")
        expires = int(self._clock() + (self.ttl_s if ttl_s is None else ttl_s))
        flags = _FLAG_PARAMETERS if pass_parameters else 0
        nonce = secrets.token_urlsafe(12)
        payload = [_VERSION, call_id, org_id, agent_id, expires, nonce, flags]
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: object) -> StreamClaims:
        """The token's claims if it is genuine and not expired; does not use it up."""
        if not isinstance(token, str) or not token:
            raise TokenError("no stream token")
        if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TokenError("malformed stream token")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise TokenError("stream token signature does not match")
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise TokenError("malformed stream token payload") from None
        if not (isinstance(payload, list) and len(payload) == 7 and payload[0] == _VERSION):
            raise TokenError("unknown stream token version")
        _, call_id, org_id, agent_id, expires, nonce, flags = payload
        if not all(valid_id(v) for v in (call_id, org_id, agent_id)):
            raise TokenError("stream token names an invalid id")
        if not isinstance(expires, int) or not isinstance(nonce, str) or not isinstance(flags, int):
            raise TokenError("malformed stream token payload")
        if self._clock() >= expires:
            raise TokenError("stream token expired")
        return StreamClaims(
            call_id, org_id, agent_id, float(expires), nonce, bool(flags & _FLAG_PARAMETERS)
        )

    async def redeem_shared(self, token: object) -> StreamClaims:
        """``redeem``, then the fleet's ledger (when there is one) must not have seen it."""
        claims = self.redeem(token)
        if self.ledger is not None:
            ttl = max(1.0, claims.expires_at - self._clock())
            if not await self.ledger.claim(claims.nonce, ttl):
                raise TokenError("stream token already used")
        return claims

    def redeem(self, token: object) -> StreamClaims:
        """Verify and use up: a second ``redeem`` of the same token is refused."""
        claims = self.verify(token)
        now = self._clock()
        self._forget_expired(now)
        if claims.nonce in self._used:
            raise TokenError("stream token already used")
        self._used[claims.nonce] = claims.expires_at
        return claims

    def _forget_expired(self, now: float) -> None:
        # Insertion order is mint order give or take a TTL: drop from the front.
        while self._used:
            nonce, expires = next(iter(self._used.items()))
            if expires > now:
                break
            del self._used[nonce]

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def stream_tokens(secret: str | None, *, ttl_s: float = 60.0) -> StreamTokens:
    """The process's tokens from its settings; a random key (logged) when none is set."""
    if secret:
        return StreamTokens(secret, ttl_s=ttl_s)
    log.warning(
        "VOXLINE_STREAM_TOKEN_SECRET is not set: media stream tokens are signed with a random "
        "key for this process only; a fleet (several processes behind one URL) needs it set"
    )
    return StreamTokens.random(ttl_s=ttl_s)
