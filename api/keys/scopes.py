"""What a key's scope may do, decided from the request's method and path alone.

- ``read``: safe methods only (GET, HEAD, OPTIONS, and the live WebSocket).
- ``calls``: ``read``, plus dispatching and hanging up calls, browser call sessions and
  campaigns; not agents, numbers, deliveries, keys or the signing secret.
- ``admin``: everything.

Key management and the signing secret are ``admin`` even to read: a listing of keys or
the secret itself is not something a read-only dashboard key should see.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    CALLS = "calls"
    ADMIN = "admin"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_ONLY_PREFIXES = ("/api/v1/keys", "/api/v1/org/signing-secret")
CALLS_PREFIXES = ("/api/v1/calls", "/api/v1/bulk-call", "/api/v1/sessions")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def allowed(scope: str, method: str, path: str) -> bool:
    """``method`` is "WEBSOCKET" for a WebSocket upgrade (treated as a read)."""
    if scope == Scope.ADMIN:
        return True
    if scope not in (Scope.READ, Scope.CALLS) or _under(path, ADMIN_ONLY_PREFIXES):
        return False
    if method.upper() in SAFE_METHODS or method.upper() == "WEBSOCKET":
        return True
    return scope == Scope.CALLS and _under(path, CALLS_PREFIXES)
