"""The tool runner with a recording fake fetch: what the model is offered, what a
tool call sends, and that every failure is a result, never an exception.

The same runner against real HTTP servers (and the egress-checked fetch) is in
tests/api/tools/.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from voice_core.config import AgentConfig
from voice_core.tools import FetchError, FetchResponse, HttpToolSpec, ToolRunner, WebSearchConfig
from voice_core.tools.runner import MAX_CONTENT_CHARS


class FakeFetch:
    """Answers every request with ``answer`` (or raises it) and records the request."""

    def __init__(self, answer: FetchResponse | Exception | None = None, delay_s: float = 0):
        self.answer = answer or FetchResponse(200, {"content-type": "application/json"}, b"{}")
        self.delay_s = delay_s
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, method: str, url: str, **kwargs: Any) -> FetchResponse:
        self.calls.append({"method": method, "url": url, **kwargs})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


ORDER_TOOL = HttpToolSpec(
    name="order_status",
    description="Look up an order by its number.",
    parameters={
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^[A-Z0-9/ -]{1,20}$"},
            "verbose": {"type": "boolean"},
        },
        "required": ["order_id"],
        "additionalProperties": False,
    },
    url="https://shop.example/api/orders/{order_id}",
    headers={"Authorization": "Bearer {{secret:SHOP_TOKEN}}"},
)

BOOK_TOOL = HttpToolSpec(
    name="book_slot",
    description="Book an appointment slot.",
    parameters={
        "type": "object",
        "properties": {
            "day": {"type": "string", "enum": ["monday", "tuesday"]},
            "name": {"type": "string", "minLength": 1},
            "party": {"type": "integer", "minimum": 1, "maximum": 8},
        },
        "required": ["day", "name"],
    },
    url="https://clinic.example/bookings",
    method="POST",
)


def runner(fetch: FakeFetch, **kwargs: Any) -> ToolRunner:
    kwargs.setdefault("secrets", {"SHOP_TOKEN": "tok-123"})
    return ToolRunner([ORDER_TOOL, BOOK_TOOL], kwargs.pop("web_search", None), fetch, **kwargs)


def test_definitions_are_openai_function_tools() -> None:
    search = WebSearchConfig(enabled=True, provider="searxng", base_url="https://s.example")
    defs = runner(FakeFetch(), web_search=search).definitions()
    assert [d["function"]["name"] for d in defs] == ["order_status", "book_slot", "web_search"]
    assert all(d["type"] == "function" for d in defs)
    assert defs[0]["function"]["parameters"] == ORDER_TOOL.parameters
    assert defs[2]["function"]["parameters"]["required"] == ["query"]
    plain = runner(FakeFetch())
    assert not plain.has("web_search") and plain.has("book_slot") and not plain.has("end_call")


def test_web_search_needing_a_key_without_one_is_not_offered() -> None:
    brave = WebSearchConfig(enabled=True, provider="brave", api_key_env="BRAVE_KEY")
    r = runner(FakeFetch(), web_search=brave, secrets={})
    assert not r.has("web_search")
    assert [d["function"]["name"] for d in r.definitions()] == ["order_status", "book_slot"]


async def test_get_fills_the_url_encoded_placeholder_and_the_secret() -> None:
    fetch = FakeFetch(FetchResponse(200, {}, b'{"status": "shipped", "eta": "Tuesday"}'))
    result = await runner(fetch).run("order_status", {"order_id": "A/1 B", "verbose": True})
    assert result.ok and result.error is None
    assert json.loads(result.content) == {"status": "shipped", "eta": "Tuesday"}
    (call,) = fetch.calls
    assert call["method"] == "GET"
    assert call["url"] == "https://shop.example/api/orders/A%2F1%20B"
    assert call["headers"]["Authorization"] == "Bearer tok-123"
    assert call["params"] == {"verbose": "true"}  # what the URL does not take is a query
    assert call["json"] is None and call["timeout_s"] == 3.0


async def test_post_sends_the_arguments_as_json_and_accepts_a_json_string() -> None:
    fetch = FakeFetch(FetchResponse(201, {}, b'{"booking_id": 7}'))
    args = json.dumps({"day": "monday", "name": "Ana", "party": 2})
    result = await runner(fetch).run("book_slot", args)
    assert result.ok and json.loads(result.content) == {"booking_id": 7}
    assert fetch.calls[0]["json"] == {"day": "monday", "name": "Ana", "party": 2}
    assert fetch.calls[0]["params"] is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"name": "Ana"}, "'day' is required"),
        ({"day": "friday", "name": "Ana"}, "'day'"),
        ({"day": "monday", "name": "Ana", "party": 20}, "'party'"),
        ({"day": "monday", "name": 5}, "'name'"),
        ("not json", "not JSON"),
        ([1, 2], "JSON object"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_field(args: Any, field: str) -> None:
    fetch = FakeFetch()
    result = await runner(fetch).run("book_slot", args)
    assert not result.ok and field in (result.error or "")
    assert json.loads(result.content) == {"error": result.error}
    assert fetch.calls == []  # nothing sent


async def test_extra_arguments_are_refused_when_the_schema_says_so() -> None:
    result = await runner(FakeFetch()).run("order_status", {"order_id": "A1", "x": 1})
    assert not result.ok and "Additional properties" in (result.error or "")


async def test_an_unknown_tool_and_a_missing_secret_fail_without_a_request() -> None:
    fetch = FakeFetch()
    result = await runner(fetch).run("delete_everything", {})
    assert not result.ok and "unknown tool" in (result.error or "")
    result = await runner(fetch, secrets={}).run("order_status", {"order_id": "A1"})
    assert not result.ok and "SHOP_TOKEN" in (result.error or "")
    assert fetch.calls == []  # the placeholder is never sent


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (FetchResponse(503, {}, b'{"error": "down"}'), "HTTP 503"),
        (FetchResponse(200, {"content-type": "text/html"}, b"<html>hi</html>"), "not JSON"),
        (FetchResponse(200, {}, b"[" + b"1," * 9000 + b"1]"), "larger than 16384 bytes"),
        (FetchError("refused target: address 10.0.0.1 is not public"), "refused target"),
    ],
)
async def test_failures_are_results(answer: Any, error: str) -> None:
    result = await runner(FakeFetch(answer)).run("order_status", {"order_id": "A1"})
    assert not result.ok and error in (result.error or "")
    assert result.elapsed_ms >= 0


async def test_a_fetch_that_overstays_its_timeout_is_cut_off() -> None:
    slow = HttpToolSpec(**{**ORDER_TOOL.model_dump(), "timeout_s": 0.05})
    r = ToolRunner([slow], None, FakeFetch(delay_s=30), secrets={"SHOP_TOKEN": "t"})
    result = await r.run("order_status", {"order_id": "A1"})
    assert not result.ok and "timed out after 0.05 s" in (result.error or "")


async def test_content_is_bounded_and_keeps_every_field() -> None:
    data = {"notes": "x" * 5000, "items": list(range(50)), "status": "ok"}
    fetch = FakeFetch(FetchResponse(200, {}, json.dumps(data).encode()))
    result = await runner(fetch).run("order_status", {"order_id": "A1"})
    assert result.ok and len(result.content) <= MAX_CONTENT_CHARS
    short = json.loads(result.content)
    assert (
        short["status"] == "ok" and len(short["notes"]) <= 300 and "40 more" in short["items"][-1]
    )


async def test_an_empty_2xx_answer_is_a_success() -> None:
    fetch = FakeFetch(FetchResponse(204, {}, b""))
    result = await runner(fetch).run("order_status", {"order_id": "A1"})
    assert result.ok and json.loads(result.content) == {"ok": True, "status": 204}


async def test_cancellation_still_propagates() -> None:
    r = runner(FakeFetch(delay_s=30))
    task = asyncio.create_task(r.run("order_status", {"order_id": "A1"}))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- the spec ---------------------------------------------------------------------------


def _tool(**changes: Any) -> dict[str, Any]:
    return {**ORDER_TOOL.model_dump(), **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "end_call"}, "built-in"),
        ({"name": "Bad-Name"}, "pattern"),
        ({"parameters": {"type": "string"}}, "object schema"),
        ({"parameters": {"type": "object", "properties": {}, "required": ["x"]}}, "required"),
        ({"parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "valid JSON"),
        (
            {"parameters": {"type": "object", "properties": {f"p{i}": {} for i in range(900)}}},
            "4000",
        ),
        ({"parameters": {"type": "object", "properties": {"a": {"$ref": "https://x/s"}}}}, "$ref"),
        ({"url": "https://{order_id}.example/x"}, "never the host"),
        ({"url": "ftp://shop.example/{order_id}"}, "http(s)"),
        ({"url": "https://shop.example/{nope}"}, "name no parameter"),
        ({"headers": {"Host": "internal"}}, "set by the client"),
        ({"headers": {"X-Key": "{{secret:lower}}"}}, "secret is written"),
        ({"timeout_s": 30}, "less than or equal to 10"),
    ],
)
def test_spec_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HttpToolSpec(**_tool(**changes))
    assert message in str(caught.value)


def test_spec_defaults_and_secret_names() -> None:
    tool = HttpToolSpec(name="t", description="d", url="https://x.example/a")
    assert (tool.method, tool.timeout_s, tool.max_response_bytes) == ("GET", 3.0, 16384)
    assert ORDER_TOOL.secret_names() == ["SHOP_TOKEN"]


def test_web_search_config_needs_what_its_provider_needs() -> None:
    assert not WebSearchConfig().enabled and WebSearchConfig().max_results == 3
    with pytest.raises(ValidationError, match="base_url"):
        WebSearchConfig(enabled=True, provider="searxng")
    with pytest.raises(ValidationError, match="api_key_env"):
        WebSearchConfig(enabled=True, provider="tavily")
    brave = WebSearchConfig(enabled=True, provider="brave", api_key_env="BRAVE_KEY")
    assert brave.resolved_base() == "https://api.search.brave.com"


def test_agent_config_never_shows_the_resolved_secrets() -> None:
    config = AgentConfig(tools=[ORDER_TOOL], tool_secrets={"SHOP_TOKEN": "tok-123"})
    assert "tok-123" not in repr(config) and "tool_secrets" not in config.model_dump()
