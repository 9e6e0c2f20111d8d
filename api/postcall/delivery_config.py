"""Typed configuration of each post-call channel, and the checks made when an agent
is saved (422 naming the field: ``post_call_actions.<i>.config.<field>``).

Secrets (CRM and WhatsApp tokens) are never stored in the agent: ``token_env`` names
the environment variable that holds one, which must be on the operator's
``VOXLINE_TENANT_SECRET_ENV_ALLOWLIST``; without it the process-wide setting
(``VOXLINE_HUBSPOT_TOKEN``, ...) is used, only towards the provider's own API host
(``api.postcall.policy``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.postcall import egress, policy
from api.postcall.payload import sample_payload, template_context
from api.postcall.templates import DEFAULT_MAX_CHARS, DEFAULT_TIMEOUT_S, renderer

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,63}$"
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Headers voxline sets itself: a configured value must not forge or break them.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
RESERVED_PREFIX = "x-voxline-"


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # fields holding Jinja2 templates (str, list[str] or dict[str, str] of them)
    template_fields: ClassVar[tuple[str, ...]] = ()
    # fields holding URLs this server will call (SSRF-checked at save and at send)
    url_fields: ClassVar[tuple[str, ...]] = ()

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        """``[(location inside config, source)]`` of every template set."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for name in self.template_fields:
            value = getattr(self, name)
            if isinstance(value, str):
                out.append(((name,), value))
            elif isinstance(value, list):
                out += [((name, i), v) for i, v in enumerate(value)]
            elif isinstance(value, dict):
                out += [((name, k), v) for k, v in value.items()]
        return out

    def urls(self) -> list[tuple[str, str]]:
        return [(n, getattr(self, n)) for n in self.url_fields if getattr(self, n)]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


class WebhookConfig(ChannelConfig):
    template_fields = ("payload_template",)
    url_fields = ("url",)
    url: str = Field(max_length=2000)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, max_length=30)
    payload_template: str | None = Field(
        None, max_length=20000, description="Jinja2 body; null = the default JSON payload"
    )
    content_type: str | None = Field(
        None, max_length=100, description="default: application/json when the body is JSON"
    )

    _url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            low = name.lower()
            if low in RESERVED_HEADERS or low.startswith(RESERVED_PREFIX):
                raise ValueError(f"header {name!r} is set by voxline and cannot be configured")
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r} has a line break in its value")
        return v


DEFAULT_SUBJECT = "Call {{ call_id }} {{ status }} ({{ contact_number }})"


class EmailConfig(ChannelConfig):
    template_fields = ("subject_template", "body_template")
    to: list[str] = Field(min_length=1, max_length=20)
    cc: list[str] = Field(default_factory=list, max_length=20)
    subject_template: str = Field(DEFAULT_SUBJECT, max_length=1000)
    body_template: str | None = Field(None, max_length=20000, description="null = a summary")

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for address in v:
            if not EMAIL.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return v


class SlackConfig(ChannelConfig):
    template_fields = ("text_template",)
    url_fields = ("webhook_url",)
    webhook_url: str = Field(max_length=2000, description="a Slack incoming-webhook URL")
    text_template: str | None = Field(None, max_length=3000, description="null = a summary")
    blocks: bool = Field(True, description="also send Block Kit sections (summary, fields)")

    _url = field_validator("webhook_url")(classmethod(lambda cls, v: _http_url(v)))


class HubSpotConfig(ChannelConfig):
    template_fields = ("body_template", "contact_properties")
    url_fields = ("base_url",)
    base_url: str | None = Field(None, description="default: VOXLINE_HUBSPOT_BASE_URL")
    token_env: str | None = Field(None, pattern=ENV_NAME)
    body_template: str | None = Field(None, max_length=20000, description="hs_call_body")
    contact_properties: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="contact property -> template, set on create and update",
    )

    _url = field_validator("base_url")(classmethod(lambda cls, v: _http_url(v)))


class SalesforceConfig(ChannelConfig):
    template_fields = ("subject_template", "body_template", "contact_fields")
    url_fields = ("instance_url",)
    instance_url: str | None = Field(None, description="default: VOXLINE_SALESFORCE_INSTANCE_URL")
    api_version: str | None = Field(None, pattern=r"^v\d{2,3}\.\d$")
    token_env: str | None = Field(None, pattern=ENV_NAME)
    subject_template: str = Field("Call {{ status }}: {{ contact_number }}", max_length=255)
    body_template: str | None = Field(None, max_length=32000, description="Task.Description")
    contact_fields: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="Contact field -> template (LastName is required when creating)",
    )

    _url = field_validator("instance_url")(classmethod(lambda cls, v: _http_url(v)))


class WhatsAppConfig(ChannelConfig):
    template_fields = ("to", "text_template", "template_params")
    url_fields = ("base_url",)
    to: str = Field("{{ contact_number }}", max_length=200, description="E.164, a template")
    phone_number_id: str | None = Field(
        None, pattern=r"^\d{5,20}$", description="default: VOXLINE_WHATSAPP_PHONE_NUMBER_ID"
    )
    type: Literal["text", "template"] = "text"
    text_template: str | None = Field(None, max_length=4096, description="null = a summary")
    template_name: str | None = Field(None, pattern=r"^[a-z0-9_]{1,512}$")
    language_code: str = Field("en_US", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    template_params: list[str] = Field(default_factory=list, max_length=20)
    base_url: str | None = Field(None, description="default: VOXLINE_WHATSAPP_GRAPH_BASE_URL")
    api_version: str | None = Field(None, pattern=r"^v\d{1,3}\.\d$")
    token_env: str | None = Field(None, pattern=ENV_NAME)

    _url = field_validator("base_url")(classmethod(lambda cls, v: _http_url(v)))

    @model_validator(mode="after")
    def _template_needs_a_name(self) -> WhatsAppConfig:
        if self.type == "template" and not self.template_name:
            raise ValueError("template_name is required when type is 'template'")
        return self


CHANNEL_CONFIGS: dict[str, type[ChannelConfig]] = {
    "webhook": WebhookConfig,
    "email": EmailConfig,
    "slack": SlackConfig,
    "hubspot": HubSpotConfig,
    "salesforce": SalesforceConfig,
    "whatsapp": WhatsAppConfig,
}


def parse_config(channel: str, config: dict[str, Any]) -> ChannelConfig:
    return CHANNEL_CONFIGS[channel].model_validate(config)


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


async def config_errors(spec: Any) -> list[dict[str, Any]]:
    """Every problem with the spec's post-call actions that needs no network. Templates
    render against a sample call in the bounded worker (``api.postcall.templates``),
    under the serving app's limits."""
    settings = policy.current_settings.get()
    timeout_s = settings.template_timeout_s if settings else DEFAULT_TIMEOUT_S
    max_chars = settings.template_max_output_chars if settings else DEFAULT_MAX_CHARS
    errors: list[dict[str, Any]] = []
    context = template_context(sample_payload(spec.extraction, spec.name))
    for i, action in enumerate(spec.post_call_actions):
        base: list[Any] = ["body", "post_call_actions", i, "config"]
        try:
            config = parse_config(action.channel, action.config)
        except ValidationError as exc:
            for e in exc.errors():
                errors.append(_error(base + list(e["loc"]), e["msg"], e["type"]))
            continue
        errors += [_error(base + loc, msg, kind) for loc, msg, kind in secret_errors(config)]
        for loc, source in config.templates():
            # one at a time: a template that times out is named, and only it
            [result] = await renderer.render_batch(
                [source], context, timeout_s=timeout_s, max_chars=max_chars
            )
            if result.kind == "syntax":
                errors.append(_error(base + list(loc), result.text, "template_syntax"))
            elif result.kind == "render":
                msg = f"template error: {result.text} (with a sample call's variables)"
                errors.append(_error(base + list(loc), msg, "template_render"))
            elif result.kind != "ok":
                msg = f"template error: {result.text} (with a sample call)"
                errors.append(_error(base + list(loc), msg, f"template_{result.kind}"))
    return errors


PROVIDER_OF: dict[type[ChannelConfig], tuple[str, str]] = {
    HubSpotConfig: ("hubspot", "base_url"),
    SalesforceConfig: ("salesforce", "instance_url"),
    WhatsAppConfig: ("whatsapp", "base_url"),
}


def secret_errors(config: ChannelConfig) -> list[tuple[list[Any], str, str]]:
    """``token_env`` must be allow-listed; a tenant URL without one would receive the
    operator's token (``api.postcall.policy``)."""
    if type(config) not in PROVIDER_OF:
        return []
    settings = policy.current_settings.get()
    provider, url_field = PROVIDER_OF[type(config)]
    token_env = getattr(config, "token_env", None)
    url = getattr(config, url_field)
    try:
        if token_env:
            policy.check_env(token_env, settings)
        elif url and settings is not None:
            policy.check_operator_token(provider, url, settings)
        elif url:
            raise policy.SecretRefused("a custom URL needs token_env")
    except policy.SecretRefused as exc:
        return [(["token_env" if token_env else url_field], str(exc), "secret")]
    return []


async def url_errors(spec: Any, allow_private: bool) -> list[dict[str, Any]]:
    """SSRF checks of the configured URLs (these resolve host names)."""
    errors: list[dict[str, Any]] = []
    for i, action in enumerate(spec.post_call_actions):
        try:
            config = parse_config(action.channel, action.config)
        except ValidationError:
            continue
        for name, url in config.urls():
            try:
                await egress.check_url(url, allow_private)
            except egress.UnresolvedHost:
                continue  # may be a transient DNS failure: the send-time check decides
            except egress.BlockedTarget as exc:
                loc = ["body", "post_call_actions", i, "config", name]
                errors.append(_error(loc, f"refused: {exc}", "ssrf"))
    return errors


async def check_post_call_actions(spec: Any) -> None:
    """What an agent save runs: config, secret and template errors first, then URL
    checks (under the serving app's VOXLINE_ALLOW_PRIVATE_DELIVERY_TARGETS)."""
    from fastapi import HTTPException

    errors = await config_errors(spec)
    if not errors:
        errors = await url_errors(spec, egress.allow_private_targets.get())
    if errors:
        raise HTTPException(422, detail=errors)
