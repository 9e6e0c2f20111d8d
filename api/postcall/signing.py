"""Webhook signatures: ``X-Voxline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``"<t>.<raw body>"`` with the organization's webhook secret, so a
receiver can prove a request came from voxline and is recent (the timestamp is
signed too, which defeats replaying an old request).

**Rotation.** After ``POST /api/v1/org/signing-secret/rotate`` deliveries are signed
with the new secret *and*, until the overlap ends, the previous one: the header then
carries two signatures over the same timestamp, new first,
``t=<t>,v1=<HMAC with new>,v1=<HMAC with previous>``. A receiver accepts the request if
any ``v1`` matches the secret it holds, so it can switch secrets at any time during the
overlap. The secret arrives here as a ``SigningSecret`` (a ``str`` that carries the
previous secret while it is still valid), so callers pass it on unchanged.

Receivers verify with the SDK's copy (``voxline.signing``, so they need no server
install); ``tests/voxline/test_signing.py`` holds the two to the same wire format
and constants: change both or neither.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Voxline-Signature"
IDEMPOTENCY_HEADER = "X-Voxline-Idempotency-Key"
EVENT_HEADER = "X-Voxline-Event"
DEFAULT_TOLERANCE_S = 300


class SigningSecret(str):
    """A webhook secret; ``previous`` is the one it replaced, while both are valid."""

    previous: str | None

    def __new__(cls, value: str, previous: str | None = None) -> SigningSecret:
        secret = super().__new__(cls, value)
        secret.previous = previous or None
        return secret


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    header = f"t={t},v1={_mac(secret, t, body)}"
    previous = getattr(secret, "previous", None)
    if previous and previous != secret:
        header += f",v1={_mac(previous, t, body)}"
    return header


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """``(timestamp, [v1 signatures])``; several ``v1`` entries may appear while a
    secret is being rotated."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    return timestamp, signatures


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """True if ``header`` is a valid signature of ``body`` made within ``tolerance_s``
    seconds of ``now`` (either side, to allow for clock skew). ``tolerance_s <= 0``
    skips the age check."""
    if not header or not secret:
        return False
    if isinstance(body, str):
        body = body.encode()
    timestamp, signatures = parse_header(header)
    if timestamp is None or not signatures:
        return False
    if tolerance_s > 0:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance_s:
            return False
    expected = _mac(secret, timestamp, body)
    # compare_digest: the time taken must not reveal how many characters matched
    return any(hmac.compare_digest(expected, s) for s in signatures)
