"""Channel name -> its ``send`` function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from api.postcall.channels import email, hubspot, salesforce, slack, webhook, whatsapp
from api.postcall.channels.base import SendContext, SendResult
from api.postcall.delivery_config import parse_config

SENDERS: dict[str, Callable[[Any, SendContext], Awaitable[SendResult]]] = {
    "webhook": webhook.send,
    "email": email.send,
    "slack": slack.send,
    "hubspot": hubspot.send,
    "salesforce": salesforce.send,
    "whatsapp": whatsapp.send,
}


async def send(channel: str, config: dict[str, Any], ctx: SendContext) -> SendResult:
    parsed = parse_config(channel, config)
    await ctx.prerender(parsed)  # templates render bounded, off the event loop
    return await SENDERS[channel](parsed, ctx)
