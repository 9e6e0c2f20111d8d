"""The one shape of a field error: 422 with FastAPI's own ``detail`` list, so a client
reads a hand-raised error exactly like a validation error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from fastapi import HTTPException


def field_error(
    field: str,
    msg: str,
    *,
    where: Literal["body", "query"] = "body",
    kind: str = "value_error",
) -> HTTPException:
    return HTTPException(422, detail=[{"loc": [where, field], "msg": msg, "type": kind}])


def check_one_of(value: str | None, field: str, choices: Iterable[str]) -> None:
    """A query parameter limited to ``choices`` (None means not given)."""
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise field_error(field, f"{field} must be one of {', '.join(choices)}", where="query")
