"""Telnyx's Ed25519 webhook signature: good, forged, missing, stale, another key."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.telnyx.signature import public_key, signature_problem

SIGNER = Ed25519PrivateKey.generate()
KEY = public_key(
    base64.b64encode(SIGNER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
)
BODY = b'{"data":{"event_type":"call.initiated","payload":{"call_control_id":"v3:x"}}}'
NOW = 1_760_000_000.0


def sign(body: bytes, timestamp: str, signer: Ed25519PrivateKey = SIGNER) -> str:
    return base64.b64encode(signer.sign(timestamp.encode() + b"|" + body)).decode()


def check(body: bytes, signature: str | None, timestamp: str | None) -> str | None:
    return signature_problem(KEY, body, signature, timestamp, clock=lambda: NOW)


def test_a_genuine_fresh_webhook_passes() -> None:
    assert check(BODY, sign(BODY, str(int(NOW))), str(int(NOW))) is None
    assert check(BODY, sign(BODY, str(int(NOW) - 200)), str(int(NOW) - 200)) is None


def test_forged_missing_stale_and_foreign_signatures_are_refused() -> None:
    ts = str(int(NOW))
    good = sign(BODY, ts)
    assert check(BODY.replace(b"initiated", b"answered"), good, ts) == "does not match"
    assert check(BODY, good, str(int(NOW) + 1)) == "does not match"  # timestamp is signed
    assert check(BODY, None, ts) == "missing"
    assert check(BODY, good, None) == "missing"
    old = str(int(NOW) - 301)
    assert check(BODY, sign(BODY, old), old) == "timestamp too old or malformed"
    assert check(BODY, "@@not-base64@@", ts) == "malformed"
    other = Ed25519PrivateKey.generate()
    assert check(BODY, sign(BODY, ts, other), ts) == "does not match"


def test_a_key_that_is_not_ed25519_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        public_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="base64"):
        public_key("not base64 at all!")
