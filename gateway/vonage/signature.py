"""Vonage's signed webhooks: a JWT (HS256, the account's signature secret) in
``Authorization: Bearer``, whose ``payload_hash`` claim is the SHA-256 (hex) of the
request body.

The JWT is checked with PyJWT (signature, algorithm pinned to HS256, ``iat``
required), then its age (``iat`` at most ``max_age_s`` ago, a little clock skew
allowed ahead) and the body's hash, so a captured token cannot carry another body or
be replayed later. Sans-I/O: header, body and a clock in, a verdict out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import jwt

DEFAULT_MAX_AGE_S = 300.0
_SKEW_S = 60.0


def jwt_problem(
    secret: str,
    authorization: str | None,
    body: bytes,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    clock: Callable[[], float] = time.time,
) -> str | None:
    """None if the webhook is signed by ``secret`` and fresh, else why not."""
    if not authorization or not authorization.startswith("Bearer "):
        return "missing"
    token = authorization.removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["iat"], "verify_iat": False},
        )
    except jwt.InvalidTokenError as exc:
        return f"invalid ({type(exc).__name__})"
    iat = claims.get("iat")
    now = clock()
    if not isinstance(iat, int | float) or not (now - max_age_s <= iat <= now + _SKEW_S):
        return "too old"
    expected = hashlib.sha256(body).hexdigest()
    said = claims.get("payload_hash")
    if body and not isinstance(said, str):
        return "has no payload_hash"
    if isinstance(said, str) and not hmac.compare_digest(said.lower(), expected):
        return "payload_hash does not match the body"
    return None
