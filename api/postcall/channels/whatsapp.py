"""WhatsApp Cloud API: ``POST {graph}/{version}/{phone_number_id}/messages``.

A free-form ``text`` message is only delivered inside the 24-hour customer-service
window; outside it WhatsApp requires an approved ``template`` message, so both are
offered (``type``).
"""

from __future__ import annotations

from typing import Any

from api.postcall.channels.base import (
    DeliveryFailed,
    SendContext,
    SendResult,
    default_text,
    excerpt,
    http_call,
    json_body,
)
from api.postcall.delivery_config import WhatsAppConfig


def message_body(config: WhatsAppConfig, ctx: SendContext) -> dict[str, Any]:
    to = "".join(ch for ch in ctx.render(config.to) if ch.isdigit())
    if not 7 <= len(to) <= 15:
        raise DeliveryFailed(f"whatsapp: 'to' is not a phone number: {to!r}", retryable=False)
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    body["to"] = to
    if config.type == "text":
        text = ctx.render(config.text_template) if config.text_template else None
        body["type"] = "text"
        body["text"] = {"preview_url": False, "body": (text or default_text(ctx.payload))[:4096]}
        return body
    template: dict[str, Any] = {
        "name": config.template_name,
        "language": {"code": config.language_code},
    }
    if config.template_params:
        template["components"] = [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": ctx.render(p)} for p in config.template_params
                ],
            }
        ]
    body["type"] = "template"
    body["template"] = template
    return body


async def send(config: WhatsAppConfig, ctx: SendContext) -> SendResult:
    t = ctx.settings.transport
    phone_number_id = config.phone_number_id or t.whatsapp_phone_number_id
    if not phone_number_id:
        raise DeliveryFailed("whatsapp: no phone_number_id configured", retryable=False)
    base = (config.base_url or t.whatsapp_graph_base_url).rstrip("/")
    token = ctx.token(
        config.token_env, t.whatsapp_access_token, "WhatsApp", provider="whatsapp", url=base
    )
    version = config.api_version or t.whatsapp_graph_version
    response = await http_call(
        ctx,
        "POST",
        f"{base}/{version}/{phone_number_id}/messages",
        step="whatsapp message",
        headers={"Authorization": f"Bearer {token}"},
        json=message_body(config, ctx),
    )
    data = json_body(response, "whatsapp message")
    ids = [m.get("id") for m in data.get("messages") or [] if isinstance(m, dict)]
    return SendResult(response.status_code, excerpt(f"message ids: {ids}"))
