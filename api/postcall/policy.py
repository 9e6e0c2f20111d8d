"""What a tenant may make this server do with the operator's secrets (SECURITY.md).

* Tenants never name arbitrary server environment variables: ``token_env`` (delivery
  actions) and ``llm.api_key_env`` (agents) must be listed by the operator in
  ``VOXLINE_TENANT_SECRET_ENV_ALLOWLIST`` (empty by default). Anything else is refused
  with 422 at save and refused again at send (the list may have shrunk since).
* The operator's default tokens (``VOXLINE_HUBSPOT_TOKEN``, ``VOXLINE_SALESFORCE_TOKEN``,
  the WhatsApp access token) go only to their provider's documented API host over
  https, or to the base URL the operator configured. A tenant ``base_url`` elsewhere
  without its own ``token_env`` is refused (422 at save, dead-lettered at send): we
  refuse rather than send without a token, so a misconfiguration is seen at once.
* The operator's LLM key (``VOXLINE_LLM_API_KEY``) goes only to the operator's
  ``VOXLINE_LLM_BASE_URL``; an agent's own endpoint without its own key is sent
  ``PLACEHOLDER_KEY`` (the engine would otherwise fall back to the operator's).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from urllib.parse import urlsplit

from api.settings import ServerSettings

# Set per request by api.postcall.service.EgressPolicyMiddleware: checks made deep in a
# route (an agent save) follow the serving app's settings.
current_settings: ContextVar[ServerSettings | None] = ContextVar("current_settings", default=None)

ALLOWLIST_VAR = "VOXLINE_TENANT_SECRET_ENV_ALLOWLIST"

# provider -> (exact hosts, host suffixes) of its documented API
PROVIDER_HOSTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hubspot": (("api.hubapi.com",), ()),
    "salesforce": ((), (".salesforce.com",)),  # covers <domain>.my.salesforce.com
    "whatsapp": (("graph.facebook.com",), ()),
}


class SecretRefused(Exception):
    """The tenant's configuration would hand a server secret to the wrong place."""


def env_allowed(name: str, settings: ServerSettings | None) -> bool:
    return settings is not None and name in settings.tenant_secret_env_allowlist


def check_env(name: str, settings: ServerSettings | None) -> None:
    if not env_allowed(name, settings):
        raise SecretRefused(
            f"environment variable {name!r} is not one tenants may use "
            f"(the operator lists those in {ALLOWLIST_VAR})"
        )


def tenant_secret(name: str | None, settings: ServerSettings | None) -> str | None:
    """The value of an allow-listed variable; None for an unset or refused name."""
    if not name or not env_allowed(name, settings):
        return None
    return os.environ.get(name) or None


def operator_base(provider: str, settings: ServerSettings) -> str | None:
    if provider == "hubspot":
        return settings.hubspot_base_url
    if provider == "salesforce":
        return settings.salesforce_instance_url
    if provider == "whatsapp":
        return settings.transport.whatsapp_graph_base_url
    raise KeyError(provider)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def operator_token_may_go_to(provider: str, url: str, settings: ServerSettings) -> bool:
    """True if ``url`` is the provider's own API (https) or the operator's configured base."""
    target = _origin(url)
    if target is None:
        return False
    configured = operator_base(provider, settings)
    if configured and _origin(configured) == target:
        return True
    scheme, host, port = target
    if scheme != "https" or port not in (None, 443):
        return False
    exact, suffixes = PROVIDER_HOSTS[provider]
    return host in exact or any(host.endswith(s) for s in suffixes)


def check_operator_token(provider: str, url: str, settings: ServerSettings) -> None:
    if not operator_token_may_go_to(provider, url, settings):
        exact, suffixes = PROVIDER_HOSTS[provider]
        hosts = ", ".join([*exact, *(f"*{s}" for s in suffixes)])
        raise SecretRefused(
            f"the operator's {provider} token is sent only to {hosts} (or the operator's "
            "configured base URL); set token_env to use your own token with this URL"
        )


PLACEHOLDER_KEY = "not-needed"  # what the analysis client sends keyless endpoints too


def is_operator_llm_endpoint(url: str | None, settings: ServerSettings | None) -> bool:
    """No agent endpoint (the default one), or exactly the operator's configured one."""
    operator = settings.engine.llm_base_url if settings else None
    return url is None or (operator is not None and url.rstrip("/") == operator.rstrip("/"))
