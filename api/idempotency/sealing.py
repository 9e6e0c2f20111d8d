"""Sealing a stored response with its Idempotency-Key, which only the client holds.

The row is found by the key's SHA-256; the body is encrypted (AES-256-GCM) with a
different key derived from the same Idempotency-Key (HMAC-SHA256 with a fixed
label), so whoever reads the table learns neither the key nor the response. The
organization's id is bound as associated data: a row cannot be moved to another.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LABEL = b"voxline idempotency response v1"
_NONCE = 12


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _aead(key: str) -> AESGCM:
    return AESGCM(hmac.new(key.encode(), _LABEL, hashlib.sha256).digest())


def seal(key: str, org_id: str, body: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + _aead(key).encrypt(nonce, body, org_id.encode())


def unseal(key: str, org_id: str, sealed: bytes) -> bytes:
    return _aead(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], org_id.encode())
