"""WhatsApp Cloud API webhooks for calls: ``GET`` verification, ``POST`` events.

The signature is checked on the raw body before it is parsed; a bad one gets
401/403 and nothing is started. Events are handed to ``WhatsAppCalls``, which
answers connects in the background so WhatsApp gets its 200 at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from api.errors import error_responses
from gateway.whatsapp.webhook import (
    SIGNATURE_HEADER,
    WebhookError,
    parse_calls,
    verification_challenge,
    verify_signature,
)

router = APIRouter(
    prefix="/whatsapp", tags=["whatsapp"], responses=error_responses(400, 401, 403, 404)
)


def _refusal(exc: WebhookError) -> HTTPException:
    # A server without WhatsApp settings has no WhatsApp webhook: 404, not a server
    # error (a 5xx would page an operator and make Meta retry for nothing).
    status = 404 if exc.status == 503 else exc.status
    return HTTPException(status, detail=str(exc))


@router.get("/webhook", response_class=PlainTextResponse)
async def verify(request: Request) -> PlainTextResponse:
    settings = request.app.state.settings
    try:
        challenge = verification_challenge(
            dict(request.query_params), settings.transport.whatsapp_verify_token
        )
    except WebhookError as exc:
        raise _refusal(exc) from exc
    return PlainTextResponse(challenge)


@router.post("/webhook", responses=error_responses(413))
async def receive(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    body = await request.body()
    try:
        verify_signature(
            body, request.headers.get(SIGNATURE_HEADER), settings.transport.whatsapp_app_secret
        )
        events = parse_calls(body)
    except WebhookError as exc:
        raise _refusal(exc) from exc
    request.app.state.whatsapp.handle(events)
    return {"received": len(events)}
