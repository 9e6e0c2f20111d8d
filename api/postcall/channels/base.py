"""What every channel gets (``SendContext``), returns (``SendResult``) or raises
(``DeliveryFailed``), and the one way channels make HTTP requests (``http_call``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from api.postcall import egress, policy
from api.postcall.delivery_config import ChannelConfig
from api.postcall.payload import template_context
from api.postcall.templates import Rendered, renderer
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

    # source -> its output, filled by ``prerender`` off the event loop before ``send``
    rendered: dict[str, Rendered] = field(default_factory=dict)

    @property
    def allow_private(self) -> bool:
        return self.settings.allow_private_delivery_targets

    @property
    def ports(self) -> list[int]:
        return self.settings.egress_allowed_ports

    @property
    def timeout_s(self) -> float:
        return self.settings.delivery_timeout_s

    async def prerender(self, config: ChannelConfig) -> None:
        """Render every template of ``config`` in the bounded worker (one round trip)."""
        sources = [s for _, s in config.templates() if s not in self.rendered]
        results = await renderer.render_batch(
            sources,
            template_context(self.payload),
            timeout_s=self.settings.template_timeout_s,
            max_chars=self.settings.template_max_output_chars,
        )
        self.rendered.update(zip(sources, results, strict=True))

    def render(self, source: str) -> str:
        result = self.rendered.get(source)
        if result is None:  # a template never rendered in-process: it would be unbounded
            raise DeliveryFailed("template error: not prepared before sending", retryable=False)
        if result.kind != "ok":  # template errors never heal by retrying
            raise DeliveryFailed(f"template error: {result.text}", retryable=False)
        return result.text

    def token(
        self, env_name: str | None, default: str | None, what: str, *, provider: str, url: str
    ) -> str:
        """The tenant's allow-listed token, or the operator's only towards its provider."""
        try:
            if env_name:
                policy.check_env(env_name, self.settings)
            else:
                policy.check_operator_token(provider, url, self.settings)
        except policy.SecretRefused as exc:
            raise DeliveryFailed(f"{what}: {exc}", retryable=False) from exc
        value = policy.tenant_secret(env_name, self.settings) if env_name else default
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
            ports=ctx.ports,
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
