"""What an agent's tools may make this server do: which secrets, which targets.

* ``{{secret:NAME}}`` in a tool's header and ``web_search.api_key_env`` name server
  environment variables, so they follow ``api.postcall.policy``: only names on the
  operator's ``VOXLINE_TENANT_SECRET_ENV_ALLOWLIST``. Anything else is a 422 at save
  naming the field, and reads nothing at call time (the list may have shrunk since):
  the tool's calls then fail with "secret ... is not available", never sending the
  placeholder.
* Tool URLs and the SearXNG base pass the egress policy at save (422) and again on
  every request (``api.tools.fetch``).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from api.postcall import egress, policy
from api.settings import ServerSettings
from voice_core.tools.spec import URL_PLACEHOLDER, HttpToolSpec, WebSearchConfig, secret_names


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def secret_refs(
    tools: list[HttpToolSpec], web_search: WebSearchConfig
) -> list[tuple[list[Any], str]]:
    """Every variable the tools name, with where (the field's location)."""
    refs: list[tuple[list[Any], str]] = []
    for i, tool in enumerate(tools):
        for header, value in tool.headers.items():
            refs += [(["tools", i, "headers", header], n) for n in secret_names(value)]
    if web_search.api_key_env:
        refs.append((["web_search", "api_key_env"], web_search.api_key_env))
    return refs


def tool_secrets(
    tools: list[HttpToolSpec], web_search: WebSearchConfig, settings: ServerSettings | None
) -> dict[str, str]:
    """The allow-listed, set variables the tools name, by name (what the engine gets)."""
    values: dict[str, str] = {}
    for _, name in secret_refs(tools, web_search):
        value = policy.tenant_secret(name, settings)
        if value is not None:
            values[name] = value
    return values


async def check_agent_tools(spec: Any) -> None:
    """The save-time check (422 naming each refused field), under the serving app's
    settings."""
    settings = policy.current_settings.get()
    tools: list[HttpToolSpec] = spec.tools
    web_search: WebSearchConfig = spec.web_search
    errors: list[dict[str, Any]] = []
    for loc, name in secret_refs(tools, web_search):
        try:
            policy.check_env(name, settings)
        except policy.SecretRefused as exc:
            errors.append(_error(loc, str(exc), "secret"))
    allow_private = (
        settings.allow_private_delivery_targets if settings else egress.allow_private_targets.get()
    )
    ports = settings.egress_allowed_ports if settings else None
    urls: list[tuple[list[Any], str]] = [
        (["tools", i, "url"], URL_PLACEHOLDER.sub("x", t.url)) for i, t in enumerate(tools)
    ]
    if web_search.enabled:
        urls.append((["web_search", "base_url"], web_search.resolved_base()))
    for loc, url in urls:
        try:
            await egress.check_url(url, allow_private, ports)
        except egress.UnresolvedHost:
            continue  # may be passing DNS trouble: every request is checked again
        except egress.BlockedTarget as exc:
            errors.append(_error(loc, f"refused: {exc}", "ssrf"))
    if errors:
        raise HTTPException(422, detail=errors)
