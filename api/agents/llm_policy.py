"""An agent's own LLM endpoint and key, as far as a tenant may choose them.

* ``llm.api_key_env`` must be on the operator's ``VOXLINE_TENANT_SECRET_ENV_ALLOWLIST``
  (``api.postcall.policy``): 422 at save; at call time a name no longer listed reads
  nothing.
* ``llm.base_url`` other than the operator's own ``VOXLINE_LLM_BASE_URL`` passes the
  egress policy (``api.postcall.egress``: public addresses, allowed ports) at save
  (422) and again when a call or an analysis starts. Such an endpoint never gets the
  operator's LLM key: without its own key it is sent a placeholder.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException

from api.agents.schemas import AgentSpec
from api.postcall import egress, policy
from api.postcall.logsafe import safe_id, safe_text
from api.settings import ServerSettings
from voice_core.config import AgentConfig

log = logging.getLogger(__name__)

UNRESOLVED = "unresolved"  # not an address: the engine's pinned transport refuses to connect


async def check_endpoint(url: str | None, settings: ServerSettings | None) -> str | None:
    """BlockedTarget (not UnresolvedHost: DNS may be passing trouble) unless allowed.

    Returns the checked address the call must connect to (``UNRESOLVED`` when the
    lookup failed: the call then connects nowhere), None for the operator's own
    endpoint.
    """
    if policy.is_operator_llm_endpoint(url, settings):
        return None
    assert url is not None
    allow_private = (
        settings.allow_private_delivery_targets if settings else egress.allow_private_targets.get()
    )
    ports = settings.egress_allowed_ports if settings else None
    egress.check_literal(url, allow_private, ports)
    if allow_private:
        return None  # private targets allowed (development): nothing to pin against
    _, host, port = egress.split_url(url)
    try:
        return (await egress.resolve_checked(host, port, allow_private))[0]
    except egress.UnresolvedHost:
        return UNRESOLVED


def _error(field: str, msg: str, kind: str) -> dict[str, object]:
    return {"loc": ["body", "llm", field], "msg": msg, "type": kind}


async def check_agent_llm(spec: AgentSpec) -> None:
    """The save-time check (422 naming the field), under the serving app's settings."""
    settings = policy.current_settings.get()
    errors: list[dict[str, object]] = []
    if spec.llm.api_key_env:
        try:
            policy.check_env(spec.llm.api_key_env, settings)
        except policy.SecretRefused as exc:
            errors.append(_error("api_key_env", str(exc), "secret"))
    try:
        await check_endpoint(spec.llm.base_url, settings)
    except egress.BlockedTarget as exc:
        errors.append(_error("base_url", f"refused: {exc}", "ssrf"))
    if errors:
        raise HTTPException(422, detail=errors)


async def agent_config(
    spec: AgentSpec, settings: ServerSettings | None, context: dict | None = None
) -> AgentConfig | None:
    """The engine config for a call, or None (logged) when its endpoint is now refused."""
    try:
        address = await check_endpoint(spec.llm.base_url, settings)
    except egress.BlockedTarget as exc:
        log.warning("agent %s: LLM endpoint refused: %s", safe_id(spec.name), safe_text(exc))
        return None
    config = spec.to_agent_config(context, settings)
    # The call connects to the address just checked (no second DNS answer: no rebinding).
    config.llm.pinned_address = address
    return config
