"""The one shape of every error: ``{"detail": ...}``, a message or, for a field error, a
422 with FastAPI's own ``detail`` list, so a client reads a hand-raised error exactly
like a validation error. ``ErrorBody`` is that shape in the OpenAPI document, and
``error_responses`` declares it for the statuses a route can answer with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field


def field_error(
    field: str,
    msg: str,
    *,
    where: Literal["body", "query", "path", "header"] = "body",
    kind: str = "value_error",
) -> HTTPException:
    return HTTPException(422, detail=[{"loc": [where, field], "msg": msg, "type": kind}])


def check_one_of(value: str | None, field: str, choices: Iterable[str]) -> None:
    """A query parameter limited to ``choices`` (None means not given)."""
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise field_error(field, f"{field} must be one of {', '.join(choices)}", where="query")


class FieldError(BaseModel):
    """One refused field: where it is (``["body", "to_number"]``), why, and a kind."""

    model_config = ConfigDict(extra="allow")  # FastAPI adds input/ctx to its own
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str | list[FieldError] | dict[str, Any] = Field(
        description="what went wrong: a message; for 422 the list of refused fields "
        "(or, for a campaign without one valid contact, {msg, rejected})"
    )


_WHY = {
    400: "the request is malformed (a body that is not valid JSON)",
    401: "no API key, or an unknown or revoked one (or an invalid token or signature)",
    403: "the API key's scope does not allow this (or a webhook signature is wrong)",
    404: "no such resource in this organization",
    409: "conflicts with the resource's state, or a request with the same "
    "Idempotency-Key is still in flight",
    413: "the request body is larger than the server accepts",
    415: "the body's content type is not the one this route takes",
    422: "a field is invalid; `detail` names it",
    429: "a rate or concurrency limit: retry after Retry-After seconds",
    502: "the carrier refused the call",
    503: "not ready or not accepting this right now: retry",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route (or router) that can answer with these statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorBody, "description": _WHY[code]}
        if code in (429, 503):
            out[code]["headers"] = _RETRY_AFTER
    return out


# What every route behind an API key can answer, and what a route with a body adds.
AUTHED = (401, 403, 422, 429)
WITH_BODY = (400, 413, 422)
