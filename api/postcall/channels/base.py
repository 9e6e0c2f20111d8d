"""What every channel gets (``SendContext``), returns (``SendResult``) or raises
(``DeliveryFailed``), and the one way channels make HTTP requests (``http_call``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from api.postcall import egress
from api.postcall.payload import template_context
from api.postcall.templates import render
from api.settings import ServerSettings

EXCERPT_CHARS = 500
USER_AGENT = "voxline-delivery/0.1"


@dataclass
class SendResult:
    status_code: int | None = None
    excerpt: str | None = None


class DeliveryFailed(Exception):
    """One attempt failed. ``retryable`` False means retrying the same request cannot
    help (a 4xx, a refused URL, a missing token): the delivery goes to dead-letter."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        excerpt: str | None = None,
        retryable: bool = True,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.excerpt = excerpt
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass
class SendContext:
    http: httpx.AsyncClient
    settings: ServerSettings
    payload: dict[str, Any]
    secret: str  # the organization's webhook secret
    attempt: int

    @property
    def allow_private(self) -> bool:
        return self.settings.allow_private_delivery_targets

    @property
    def timeout_s(self) -> float:
        return self.settings.delivery_timeout_s

    def render(self, source: str) -> str:
        try:
            return render(source, template_context(self.payload))
        except Exception as exc:  # template errors never heal by retrying
            raise DeliveryFailed(
                f"template error: {type(exc).__name__}: {exc}", retryable=False
            ) from exc

    def token(self, env_name: str | None, default: str | None, what: str) -> str:
        value = os.environ.get(env_name) if env_name else default
        if not value:
            where = f"environment variable {env_name}" if env_name else f"the {what} setting"
            raise DeliveryFailed(f"no {what} token: {where} is not set", retryable=False)
        return value


def excerpt(text: str) -> str:
    return text[:EXCERPT_CHARS]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the normal backoff is good enough


def is_retryable_status(status: int) -> bool:
    # 408/425/429 and 5xx are the receiver's passing trouble; other 4xx say the
    # request itself is wrong, and sending it again will not change the answer.
    return status in (408, 425, 429) or status >= 500


async def http_call(
    ctx: SendContext,
    method: str,
    url: str,
    *,
    step: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One outbound request (SSRF-checked, address-pinned); a non-2xx answer raises
    DeliveryFailed naming ``step`` (which of a channel's requests failed)."""
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = await egress.request(
            ctx.http,
            method,
            url,
            allow_private=ctx.allow_private,
            headers=all_headers,
            timeout=ctx.timeout_s,
            **kwargs,
        )
    except egress.BlockedTarget as exc:
        raise DeliveryFailed(f"{step}: refused target: {exc}", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"{step}: timed out after {ctx.timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{step}: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"{step}: HTTP {response.status_code}",
            status_code=response.status_code,
            excerpt=excerpt(response.text),
            retryable=is_retryable_status(response.status_code),
            retry_after_s=_retry_after(response),
        )
    return response


def json_body(response: httpx.Response, step: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise DeliveryFailed(f"{step}: answer is not JSON", excerpt=excerpt(response.text)) from exc
    if not isinstance(data, dict):
        raise DeliveryFailed(f"{step}: answer is not a JSON object")
    return data


def default_text(payload: dict[str, Any]) -> str:
    """The plain-text message used by email, Slack and WhatsApp without a template."""
    lines = [
        f"Call {payload['call_id']} with {payload['contact_number']}: {payload['status']}"
        + (f" ({payload['duration_s']:.0f} s)" if payload.get("duration_s") else ""),
    ]
    if payload.get("summary"):
        lines.append(f"Summary: {payload['summary']}")
    sentiment = payload.get("sentiment") or {}
    if sentiment.get("label"):
        lines.append(f"Sentiment: {sentiment['label']}")
    for key, value in (payload.get("extracted") or {}).items():
        lines.append(f"{key}: {'-' if value is None else value}")
    if payload["analysis"]["status"] != "completed" and payload["analysis"].get("reason"):
        lines.append(f"Analysis: {payload['analysis']['status']} ({payload['analysis']['reason']})")
    if payload.get("recording_url"):
        lines.append(f"Recording: {payload['recording_url']}")
    return "\n".join(lines)
