"""Agents' tools over real HTTP on loopback, through the fetch the server injects
(``api.tools.fetch.EgressFetch``): each web-search provider's documented request and
answer, a customer's HTTP tool, its failures, and the egress policy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.settings import ServerSettings
from api.tools.fetch import EgressFetch
from tests.api.stubs.base import Stub, serving
from tests.api.tools import stubs
from tests.api.tools.stubs import SEARCH_KEY, SHOP_TOKEN
from voice_core.tools import HttpToolSpec, ToolRunner, WebSearchConfig


def _settings(allow_private: bool) -> ServerSettings:
    return ServerSettings(_env_file=None, allow_private_delivery_targets=allow_private)


@pytest.fixture
async def fetch() -> AsyncIterator[EgressFetch]:
    """Loopback allowed, as an operator's development setting does (the stubs live there)."""
    f = EgressFetch(_settings(allow_private=True))
    yield f
    await f.aclose()


@pytest.fixture
async def shop() -> AsyncIterator[Stub]:
    async with serving(stubs.customer_api()) as stub:
        yield stub


def _search(provider: str, base: str, fetch: EgressFetch, **kw: Any) -> ToolRunner:
    config = WebSearchConfig(
        enabled=True, provider=provider, base_url=base, api_key_env="SEARCH_KEY", **kw
    )
    return ToolRunner([], config, fetch, secrets={"SEARCH_KEY": SEARCH_KEY})


@pytest.mark.parametrize("provider", ["searxng", "brave", "tavily"])
async def test_web_search_provider_documented_request_and_answer(
    provider: str, fetch: EgressFetch
) -> None:
    async with serving(getattr(stubs, provider)()) as stub:
        runner = _search(provider, stub.base_url, fetch, max_results=3)
        result = await runner.run("web_search", {"query": "dentist opening hours"})
    assert stub.problems == []
    assert result.ok, result.error
    (item,) = stub.received
    hits = json.loads(result.content)["results"]
    assert len(hits) == 3 and all(set(h) == {"title", "url", "snippet"} for h in hits)
    assert all(h["url"].startswith("https://") for h in hits)
    assert all(len(h["snippet"]) <= 300 for h in hits) and len(result.content) <= 2000
    if provider == "searxng":
        assert (item.method, item.path) == ("GET", "/search")
        assert item.query == {"q": "dentist opening hours", "format": "json"}
    elif provider == "brave":
        assert (item.method, item.path) == ("GET", "/res/v1/web/search")
        assert item.query == {"q": "dentist opening hours", "count": "3"}
        # Brave's description carries markup: the model hears text
        assert hits[0]["snippet"] == "About dentist opening hours & more 0"
        assert hits[0]["title"] == "Brave dentist opening hours 0"
    else:
        assert (item.method, item.path) == ("POST", "/search")
        body = item.json()
        assert body["query"] == "dentist opening hours" and body["max_results"] == 3
        assert item.headers["authorization"] == f"Bearer {SEARCH_KEY}"


async def test_web_search_with_a_wrong_key_fails_clearly(fetch: EgressFetch) -> None:
    async with serving(stubs.brave()) as stub:
        config = WebSearchConfig(
            enabled=True, provider="brave", base_url=stub.base_url, api_key_env="K"
        )
        result = await ToolRunner([], config, fetch, secrets={"K": "wrong"}).run(
            "web_search", {"query": "x"}
        )
    assert not result.ok and result.error == "brave: HTTP 401"


def _shop_tool(base: str, path: str, **kw: Any) -> HttpToolSpec:
    return HttpToolSpec(
        name="shop",
        description="the shop's API",
        parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
        url=f"{base}{path}",
        headers={"Authorization": "Bearer {{secret:SHOP_TOKEN}}"},
        **kw,
    )


async def test_http_tool_get_with_placeholder_and_secret(fetch, shop) -> None:
    tool = _shop_tool(shop.base_url, "/orders/{order_id}")
    runner = ToolRunner([tool], None, fetch, secrets={"SHOP_TOKEN": SHOP_TOKEN})
    result = await runner.run("shop", {"order_id": "A 17"})
    assert result.ok, result.error
    assert json.loads(result.content) == {"order_id": "A 17", "status": "shipped", "eta": "Tuesday"}
    (item,) = shop.received
    assert item.path == "/orders/A 17" and item.headers["host"] == shop.base_url[7:]
    assert shop.problems == []


async def test_http_tool_post_sends_json(fetch, shop) -> None:
    tool = HttpToolSpec(
        name="book",
        description="book",
        parameters={"type": "object", "properties": {"day": {"type": "string"}}},
        url=f"{shop.base_url}/bookings",
        method="POST",
    )
    result = await ToolRunner([tool], None, fetch).run("book", {"day": "monday"})
    assert result.ok and json.loads(result.content) == {"booking_id": 41, "day": "monday"}
    assert shop.received[0].json() == {"day": "monday"} and shop.problems == []


@pytest.mark.parametrize(
    ("path", "kw", "error"),
    [
        ("/slow", {"timeout_s": 0.3}, "timed out after 0.3 s"),
        ("/big", {"max_response_bytes": 4096}, "answer larger than 4096 bytes"),
        ("/down", {}, "HTTP 503"),
        ("/page", {}, "answer is not JSON (text/html"),
        ("/moved", {}, "HTTP 302"),  # a redirect is not followed anywhere
    ],
)
async def test_http_tool_failures_are_results(fetch, shop, path, kw, error) -> None:
    tool = _shop_tool(shop.base_url, path, **kw)
    runner = ToolRunner([tool], None, fetch, secrets={"SHOP_TOKEN": SHOP_TOKEN})
    result = await runner.run("shop", {})
    assert not result.ok and error in (result.error or ""), result.error
    assert json.loads(result.content) == {"error": result.error}


async def test_a_private_address_is_refused_unless_the_operator_allows_it(shop) -> None:
    port = int(shop.base_url.rsplit(":", 1)[1])
    # the stub's port allowed, so what is refused is the address itself
    strict = EgressFetch(
        ServerSettings(
            _env_file=None, allow_private_delivery_targets=False, egress_allowed_ports=[port]
        )
    )
    try:
        tool = _shop_tool(shop.base_url, "/orders/{order_id}")
        runner = ToolRunner([tool], None, strict, secrets={"SHOP_TOKEN": SHOP_TOKEN})
        result = await runner.run("shop", {"order_id": "1"})
    finally:
        await strict.aclose()
    assert not result.ok and "refused target" in (result.error or "")
    assert "127.0.0.1 is not public" in (result.error or "")
    assert shop.received == []  # refused before connecting
