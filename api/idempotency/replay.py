"""Idempotency-Key over HTTP: the header a creating route takes, the replay, the recorder.

A creating route depends on ``Idempotent``: with the header, it claims the key for
this organization (``api.idempotency.claims``) after the API key is checked and
before the route runs. A retry of an answered request is answered from the stored
response (``IdempotentReplay``, marked with ``Idempotent-Replayed: true``). The
``IdempotencyRecorder`` middleware sees the response the route produced, stores it
on the claim (2xx) or releases the claim (anything else), and only then sends it:
a client that retries the moment it has an answer finds the answer stored.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal, require_key
from api.errors import field_error
from api.idempotency import claims

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_STATE = "idempotency_claim"  # the Claimed, in the request's scope state
SWEEP_EVERY_S = 600.0  # expired keys are deleted at most this often per process


class IdempotentReplay(Exception):
    """Answer with a stored response instead of running the route again."""

    def __init__(self, stored: claims.Replay) -> None:
        self.stored = stored


def replay_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    stored = exc.stored
    return Response(
        stored.body,
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={REPLAYED_HEADER: "true"},
    )


async def idempotency_key(
    request: Request,
    who: Annotated[Principal, Depends(require_key)],
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="any unique string (a UUID): a retry with the same key and body "
            "gets the first response back (`Idempotent-Replayed: true`) instead of "
            "creating again; kept 24 h per organization",
        ),
    ] = None,
) -> None:
    if key is None:
        return
    sessions = request.app.state.db_sessions
    await _sweep_now_and_then(request)
    body = await _comparable_body(request)
    outcome = await claims.claim(
        sessions, who.org_id, key, claims.fingerprint(request.method, request.url.path, body)
    )
    if isinstance(outcome, claims.Claimed):
        setattr(request.state, _STATE, outcome)
    elif isinstance(outcome, claims.Replay):
        raise IdempotentReplay(outcome)
    elif isinstance(outcome, claims.Mismatch):
        raise field_error(
            HEADER,
            f"{HEADER} {key!r} was already used for a different request; use a new key",
            where="header",
            kind="idempotency_key_reused",
        )
    else:
        raise HTTPException(
            409, detail=f"a request with {HEADER} {key!r} is still in flight; retry later"
        )


Idempotent = Depends(idempotency_key)


async def _comparable_body(request: Request) -> bytes:
    """The body as bytes to compare. A multipart body is compared by its fields and
    files' contents: a client sends the same upload with a new boundary each time."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.body()  # cached: the route reads the same bytes
    form = await request.form()  # cached too: the route gets this same form
    parts: list[list[str | None]] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            parts.append([name, value])
        else:
            data = await value.read()
            await value.seek(0)  # the route reads it again
            parts.append([name, value.filename, hashlib.sha256(data).hexdigest()])
    return json.dumps(parts).encode()


async def _sweep_now_and_then(request: Request) -> None:
    state = request.app.state
    now = time.monotonic()
    last = getattr(state, "idempotency_swept_at", None)
    if last is None or now - last >= SWEEP_EVERY_S:
        state.idempotency_swept_at = now
        await claims.sweep(state.db_sessions)


class IdempotencyRecorder:
    """Holds back the response of a request that claimed a key until it is stored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not any(k.lower() == b"idempotency-key" for k, _ in scope.get("headers") or []):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        held: list[Message] = []

        async def hold(message: Message) -> None:
            if _STATE in state:
                held.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold)
        except BaseException:
            if _STATE in state:
                await claims.release(scope["app"].state.db_sessions, state.pop(_STATE).claim_id)
            raise
        if _STATE not in state:
            return
        await self._settle(scope["app"].state.db_sessions, state.pop(_STATE), held)
        for message in held:
            await send(message)

    @staticmethod
    async def _settle(
        sessions: claims.Sessions, claimed: claims.Claimed, held: list[Message]
    ) -> None:
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = start["status"] if start else 500
        if not 200 <= status < 300:
            await claims.release(sessions, claimed.claim_id)
            return
        headers = {k.lower(): v for k, v in start.get("headers") or []} if start else {}
        content_type = headers.get(b"content-type", b"").decode("latin-1") or None
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        await claims.complete(sessions, claimed, status, content_type, body)
