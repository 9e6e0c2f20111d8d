"""Slack incoming webhook: ``POST <webhook_url>`` with ``{"text": ..., "blocks": [...]}``.

``text`` is always sent: Slack shows it in notifications and wherever blocks cannot
be rendered. Slack answers ``200 ok``.
"""

from __future__ import annotations

from typing import Any

from api.postcall.channels.base import SendContext, SendResult, default_text, excerpt, http_call
from api.postcall.delivery_config import SlackConfig

MAX_SECTION = 3000  # Slack's limit for a section's text


def blocks(payload: dict[str, Any], text: str) -> list[dict[str, Any]]:
    fields = [
        {"type": "mrkdwn", "text": f"*Status*\n{payload['status']}"},
        {"type": "mrkdwn", "text": f"*Contact*\n{payload['contact_number']}"},
    ]
    if payload.get("duration_s") is not None:
        fields.append({"type": "mrkdwn", "text": f"*Duration*\n{payload['duration_s']:.0f} s"})
    sentiment = (payload.get("sentiment") or {}).get("label")
    if sentiment:
        fields.append({"type": "mrkdwn", "text": f"*Sentiment*\n{sentiment}"})
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}},
        {"type": "section", "fields": fields},
    ]
    extracted = payload.get("extracted") or {}
    if extracted:
        lines = "\n".join(f"*{k}*: {'-' if v is None else v}" for k, v in extracted.items())
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:MAX_SECTION]}})
    return out


async def send(config: SlackConfig, ctx: SendContext) -> SendResult:
    text = ctx.render(config.text_template) if config.text_template else default_text(ctx.payload)
    body: dict[str, Any] = {"text": text}
    if config.blocks:
        body["blocks"] = blocks(ctx.payload, text)
    response = await http_call(ctx, "POST", config.webhook_url, step="slack", json=body)
    return SendResult(response.status_code, excerpt(response.text))
