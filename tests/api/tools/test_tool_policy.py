"""Which secrets and targets an agent's tools may use: refused at save (422 naming the
field), resolved from the operator's allow-list when a call starts, and the engine
offering tools only through the fetch the server injected."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.agents.schemas import AgentSpec
from api.settings import ServerSettings
from api.tools.fetch import EgressFetch
from voice_core.config import EngineSettings
from voice_core.engine import VoiceEngine
from voice_core.tools import ToolRunner

# A public address literal: a save checks it without a DNS lookup, and no test connects.
PUBLIC = "https://93.184.215.14"
TOOL: dict[str, Any] = {
    "name": "order_status",
    "description": "Look up an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
    "url": f"{PUBLIC}/orders/{{order_id}}",
    "headers": {"Authorization": "Bearer {{secret:SHOP_TOKEN}}", "X-Static": "yes"},
}
SEARCH: dict[str, Any] = {
    "enabled": True,
    "provider": "tavily",
    "api_key_env": "TAVILY_KEY",
    "base_url": PUBLIC,  # the default (Tavily's host) would be looked up at save
}


def _locs(r: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["detail"]]


@pytest.fixture
def operator(running):
    """The shared server's settings, restored after each test."""
    s = running.app.state.settings
    saved = (list(s.tenant_secret_env_allowlist), s.allow_private_delivery_targets)
    s.allow_private_delivery_targets = False
    yield s
    s.tenant_secret_env_allowlist, s.allow_private_delivery_targets = saved


async def test_a_secret_not_on_the_allow_list_is_refused_at_save(api, operator) -> None:
    body = {"name": "Tools agent", "tools": [TOOL], "web_search": SEARCH}
    r = await api.post("/api/v1/agents", json=body)
    assert r.status_code == 422, r.text
    assert ["body", "tools", 0, "headers", "Authorization"] in _locs(r)
    assert ["body", "web_search", "api_key_env"] in _locs(r)
    assert "VOXLINE_TENANT_SECRET_ENV_ALLOWLIST" in r.text
    operator.tenant_secret_env_allowlist = ["SHOP_TOKEN", "TAVILY_KEY"]
    r = await api.post("/api/v1/agents", json=body)
    assert r.status_code == 201, r.text
    saved = r.json()["spec"]
    assert saved["tools"][0]["headers"]["Authorization"] == "Bearer {{secret:SHOP_TOKEN}}"
    assert saved["web_search"]["provider"] == "tavily"


async def test_a_private_tool_url_is_refused_at_save(api, operator) -> None:
    for url in ("http://127.0.0.1/orders/{order_id}", "http://169.254.169.254/latest"):
        tool = {**TOOL, "url": url, "headers": {}}
        r = await api.post("/api/v1/agents", json={"name": "t", "tools": [tool]})
        assert r.status_code == 422, url
        assert ["body", "tools", 0, "url"] in _locs(r)
    search = {"enabled": True, "provider": "searxng", "base_url": "http://10.0.0.5:8080"}
    r = await api.post("/api/v1/agents", json={"name": "t", "web_search": search})
    assert r.status_code == 422 and ["body", "web_search", "base_url"] in _locs(r)


async def test_bad_tool_specs_are_422_naming_the_field(api, operator) -> None:
    r = await api.post(
        "/api/v1/agents", json={"name": "t", "tools": [{**TOOL, "name": "web_search"}]}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:4] == ["body", "tools", 0, "name"]
    r = await api.post("/api/v1/agents", json={"name": "t", "tools": [TOOL, TOOL]})
    assert r.status_code == 422 and "unique" in r.text


def test_the_server_injects_its_egress_checked_fetch(running) -> None:
    assert isinstance(running.app.services.engine.tool_fetch, EgressFetch)


def test_secrets_resolve_only_from_the_allow_list(monkeypatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "shop-secret")
    monkeypatch.setenv("TAVILY_KEY", "tvly-secret")
    spec = AgentSpec(name="a", tools=[TOOL], web_search=SEARCH)
    s = ServerSettings(_env_file=None)
    config = spec.to_agent_config(settings=s)
    assert config.tool_secrets == {}  # nothing allow-listed: nothing read
    assert config.tools[0].headers["Authorization"] == "Bearer {{secret:SHOP_TOKEN}}"
    s.tenant_secret_env_allowlist = ["SHOP_TOKEN", "TAVILY_KEY"]
    config = spec.to_agent_config(settings=s)
    assert config.tool_secrets == {"SHOP_TOKEN": "shop-secret", "TAVILY_KEY": "tvly-secret"}
    assert config.web_search.provider == "tavily" and config.tools[0].name == "order_status"


def test_the_engine_offers_tools_only_with_an_injected_fetch() -> None:
    spec = AgentSpec(name="a", tools=[TOOL])
    config = spec.to_agent_config(settings=ServerSettings(_env_file=None))
    engine = VoiceEngine(EngineSettings(_env_file=None))
    assert engine.tools_for(config) is None  # voice_core makes no request of its own
    engine.tool_fetch = EgressFetch(ServerSettings(_env_file=None))
    runner = engine.tools_for(config)
    assert isinstance(runner, ToolRunner) and runner.has("order_status")
    plain = AgentSpec(name="b").to_agent_config(settings=ServerSettings(_env_file=None))
    assert engine.tools_for(plain) is None  # no tools, no runner
