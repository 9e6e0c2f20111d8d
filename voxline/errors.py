"""Exceptions of the voxline SDK: one class per kind of failure, each carrying what
the server said (``status_code``, ``body``) so nothing is lost in translation."""

from __future__ import annotations

from typing import Any


class VoxlineError(Exception):
    """Anything that went wrong talking to voxline."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body  # the server's JSON error body (or text), as received

    @property
    def detail(self) -> Any:
        return self.body.get("detail") if isinstance(self.body, dict) else self.body


class APIConnectionError(VoxlineError):
    """The server could not be reached, or the connection broke or timed out."""


class APIStatusError(VoxlineError):
    """The server answered with an error status; subclasses name the common ones."""


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: missing, wrong or revoked API key."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404: no such thing in your organization (another tenant's looks the same)."""


class ConflictError(APIStatusError):
    """409: not in a state that allows it (e.g. hanging up an ended call)."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body is over the server's limit."""


class ValidationError(APIStatusError):
    """422: bad input. ``errors`` lists the server's ``{loc, msg, type}`` items and
    ``field_errors`` maps each dotted location (``body.name``) to its message."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        detail = self.detail
        if isinstance(detail, list):
            return [e for e in detail if isinstance(e, dict)]
        if isinstance(detail, dict):
            return [detail]
        return [{"loc": [], "msg": str(detail), "type": "value_error"}]

    @property
    def field_errors(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in self.errors:
            loc = ".".join(str(p) for p in e.get("loc", []) or [])
            out[loc] = str(e.get("msg", ""))
        return out


class RateLimitError(APIStatusError):
    """429."""


class ServerError(APIStatusError):
    """5xx (502 from dispatch: the carrier refused the call)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_for(status_code: int, body: Any, method: str, url: str) -> APIStatusError:
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIStatusError)
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
            if isinstance(e, dict)
            else str(e)
            for e in detail
        )
    elif isinstance(detail, dict):
        detail = detail.get("msg") or detail
    return cls(f"{method} {url} -> {status_code}: {detail}", status_code=status_code, body=body)
