"""Live web search providers behind one interface, sans-I/O.

Each provider turns a query into one HTTP request (``request``) and a decoded JSON
answer into a short list of hits (``parse``); the runner does the I/O through the
injected fetch. The request and answer shapes are each provider's documented API:

* SearXNG: ``GET {instance}/search?q=..&format=json`` (the instance must enable the
  json format); answer ``results[]`` with ``title``, ``url``, ``content``.
* Brave Search: ``GET https://api.search.brave.com/res/v1/web/search?q=..&count=..``
  with ``X-Subscription-Token: <key>`` and ``Accept: application/json``; answer
  ``web.results[]`` with ``title``, ``url``, ``description`` (may hold <strong> tags).
* Tavily: ``POST https://api.tavily.com/search`` with ``Authorization: Bearer <key>``
  and a JSON body ``{query, max_results, search_depth, include_answer}``; answer
  ``results[]`` with ``title``, ``url``, ``content``.

Hits are cut short: the model reads them into a spoken answer, and every character
is prompt the small model must evaluate before its first word.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from voice_core.tools.spec import WebSearchConfig

TITLE_CHARS = 120
URL_CHARS = 200
SNIPPET_CHARS = 300
# A search answer is bigger than a tool's (SearXNG sends ~20 results with engine
# metadata); it is read whole, then cut down to max_results short hits.
SEARCH_MAX_BYTES = 512 * 1024

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title, "url": self.url, "snippet": self.snippet}


@dataclass(frozen=True)
class SearchRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


class SearchFormatError(ValueError):
    """The answer is not in the provider's documented shape."""


class SearchProvider(Protocol):
    name: str

    def request(self, query: str) -> SearchRequest: ...

    def parse(self, data: Any) -> list[SearchHit]: ...


def _clean(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _hits(items: Any, snippet_key: str, limit: int) -> list[SearchHit]:
    if not isinstance(items, list):
        raise SearchFormatError("no result list in the answer")
    hits: list[SearchHit] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url:
            continue  # a hit the caller cannot be pointed to is no hit
        hits.append(
            SearchHit(
                _clean(item.get("title"), TITLE_CHARS),
                url[:URL_CHARS],
                _clean(item.get(snippet_key), SNIPPET_CHARS),
            )
        )
        if len(hits) == limit:
            break
    return hits


@dataclass(frozen=True)
class SearxngSearch:
    base_url: str
    max_results: int = 3
    api_key: str | None = None  # an instance behind a token-checking proxy
    name: str = "searxng"

    def request(self, query: str) -> SearchRequest:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return SearchRequest(
            "GET", f"{self.base_url}/search", headers, params={"q": query, "format": "json"}
        )

    def parse(self, data: Any) -> list[SearchHit]:
        if not isinstance(data, Mapping):
            raise SearchFormatError("answer is not a JSON object")
        return _hits(data.get("results"), "content", self.max_results)


@dataclass(frozen=True)
class BraveSearch:
    api_key: str
    base_url: str = "https://api.search.brave.com"
    max_results: int = 3
    name: str = "brave"

    def request(self, query: str) -> SearchRequest:
        return SearchRequest(
            "GET",
            f"{self.base_url}/res/v1/web/search",
            {"Accept": "application/json", "X-Subscription-Token": self.api_key},
            params={"q": query, "count": str(self.max_results)},
        )

    def parse(self, data: Any) -> list[SearchHit]:
        if not isinstance(data, Mapping):
            raise SearchFormatError("answer is not a JSON object")
        web = data.get("web")
        if web is None:
            return []  # Brave leaves out "web" when nothing matched
        if not isinstance(web, Mapping):
            raise SearchFormatError("web is not an object")
        return _hits(web.get("results"), "description", self.max_results)


@dataclass(frozen=True)
class TavilySearch:
    api_key: str
    base_url: str = "https://api.tavily.com"
    max_results: int = 3
    name: str = "tavily"

    def request(self, query: str) -> SearchRequest:
        return SearchRequest(
            "POST",
            f"{self.base_url}/search",
            {"Authorization": f"Bearer {self.api_key}"},
            json={
                "query": query,
                "max_results": self.max_results,
                "search_depth": "basic",  # one credit, the fast mode: a caller is waiting
                "include_answer": False,
            },
        )

    def parse(self, data: Any) -> list[SearchHit]:
        if not isinstance(data, Mapping):
            raise SearchFormatError("answer is not a JSON object")
        return _hits(data.get("results"), "content", self.max_results)


class MissingSearchKey(ValueError):
    """The provider needs a key and none was resolved."""


def provider_for(config: WebSearchConfig, api_key: str | None) -> SearchProvider:
    """The provider ``config`` names, or MissingSearchKey (Brave and Tavily need one)."""
    base, n = config.resolved_base(), config.max_results
    if config.provider == "searxng":
        return SearxngSearch(base, n, api_key)
    if not api_key:
        raise MissingSearchKey(
            f"{config.provider} needs a key: variable {config.api_key_env!r} is not set or "
            "not allow-listed"
        )
    if config.provider == "brave":
        return BraveSearch(api_key, base, n)
    return TavilySearch(api_key, base, n)


WEB_SEARCH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "maxLength": 400,  # Brave's documented limit; the others take as much
            "description": "what to search for, in a few words",
        }
    },
    "required": ["query"],
}
