"""Telnyx's webhook signature: Ed25519 over ``timestamp|body``, as Telnyx documents it.

Headers: ``telnyx-signature-ed25519`` (base64 signature) and ``telnyx-timestamp``
(Unix seconds). The signed message is the timestamp, a ``|``, then the raw request
body, verified with the account's public key (base64, from the Mission Control
portal). A timestamp further than ``tolerance_s`` from now is refused, so a
captured webhook cannot be replayed later. Sans-I/O: bytes and a clock in, a verdict out.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
# Telnyx's own SDKs accept five minutes of skew.
DEFAULT_TOLERANCE_S = 300.0


def public_key(value: str) -> Ed25519PublicKey:
    """The portal's base64 public key; ValueError if it is not a 32-byte Ed25519 key."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the Telnyx public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("the Telnyx public key is not a 32-byte Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def signature_problem(
    key: Ed25519PublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    clock: Callable[[], float] = time.time,
) -> str | None:
    """None if the webhook is genuine and fresh, else why not (for the 403 and the log)."""
    if not signature or not timestamp:
        return "missing"
    if not timestamp.isdigit() or abs(clock() - int(timestamp)) > tolerance_s:
        return "timestamp too old or malformed"
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return "malformed"
    try:
        key.verify(raw, timestamp.encode() + b"|" + body)
    except InvalidSignature:
        return "does not match"
    return None
