"""Webhook: an HTTP request with the payload (or a rendered template), signed.

Headers on every request: ``X-Voxline-Signature`` (see ``api.postcall.signing``),
``X-Voxline-Idempotency-Key`` (the delivery id: the same on every retry, so a
receiver can drop duplicates of an at-least-once delivery), ``X-Voxline-Event``,
``X-Voxline-Delivery`` and ``X-Voxline-Attempt``.
"""

from __future__ import annotations

import json
from typing import Any

from api.postcall import signing
from api.postcall.channels.base import SendContext, SendResult, excerpt, http_call
from api.postcall.delivery_config import WebhookConfig


def encode_body(config: WebhookConfig, ctx: SendContext) -> tuple[bytes, str]:
    """The body bytes and their content type."""
    if config.payload_template is None:
        body = json.dumps(ctx.payload, ensure_ascii=False, separators=(",", ":"))
        return body.encode(), config.content_type or "application/json"
    text = ctx.render(config.payload_template)
    if config.content_type:
        return text.encode(), config.content_type
    try:
        json.loads(text)
        return text.encode(), "application/json"
    except ValueError:
        return text.encode(), "text/plain; charset=utf-8"


def signed_headers(
    config: WebhookConfig, ctx: SendContext, body: bytes, content_type: str
) -> dict[str, str]:
    delivery_id = str(ctx.payload.get("delivery_id", ""))
    return {
        **config.headers,
        "Content-Type": content_type,
        signing.SIGNATURE_HEADER: signing.sign(ctx.secret, body),
        signing.IDEMPOTENCY_HEADER: delivery_id,
        signing.EVENT_HEADER: str(ctx.payload.get("event", "")),
        "X-Voxline-Delivery": delivery_id,
        "X-Voxline-Attempt": str(ctx.attempt),
    }


async def send(config: WebhookConfig, ctx: SendContext) -> SendResult:
    body, content_type = encode_body(config, ctx)
    headers = signed_headers(config, ctx, body, content_type)
    response = await http_call(
        ctx, config.method, config.url, step="webhook", headers=headers, content=body
    )
    return SendResult(response.status_code, excerpt(response.text))


def describe_request(config: WebhookConfig, ctx: SendContext) -> dict[str, Any]:
    """What a test send will transmit (shown back to the user)."""
    body, content_type = encode_body(config, ctx)
    return {"body": body.decode(), "content_type": content_type}
