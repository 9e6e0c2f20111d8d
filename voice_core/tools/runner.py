"""Runs an agent's tools for one call: the model's tool call in, a short result out.

``run`` never raises into the call (cancellation aside: a barge-in cancels a tool
like any other part of the reply). Bad arguments, an unresolved secret, a refused
target, a timeout, a non-2xx answer, an answer that is not JSON or is too big: each
is a ``ToolResult`` with ``ok=False``, an ``error`` for the call log, and a
``content`` the model can read and turn into an apology or a retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from voice_core.tools.fetch import Fetch, FetchError, FetchResponse, FetchTimeout
from voice_core.tools.spec import SECRET_REF, URL_PLACEHOLDER, HttpToolSpec, WebSearchConfig
from voice_core.tools.web_search import (
    SEARCH_MAX_BYTES,
    WEB_SEARCH_PARAMETERS,
    MissingSearchKey,
    SearchFormatError,
    SearchProvider,
    provider_for,
)

log = logging.getLogger(__name__)

WEB_SEARCH = "web_search"
# What the model gets back: enough for a spoken answer, little enough that the small
# model's next prompt evaluation stays short (~500 tokens).
MAX_CONTENT_CHARS = 2000
# Strings and lists inside a JSON answer are shortened before the whole is cut, so the
# model sees every field of a typical answer rather than the first half of one.
MAX_STRING_CHARS = 300
MAX_LIST_ITEMS = 10
# The fetch has the tool's timeout; this grace lets it report its own timeout first,
# and bounds a fetch that does not keep its promise.
TIMEOUT_GRACE_S = 0.5


@dataclass(frozen=True)
class ToolResult:
    name: str
    ok: bool
    content: str  # compact JSON for the model (also on failure: {"error": ...})
    error: str | None = None  # why it failed, for the call log; None when ok
    elapsed_ms: float = 0.0


class ToolFailed(Exception):
    """Inside the runner: this call of the tool fails with this message."""


def shorten(value: Any, depth: int = 0) -> Any:
    """``value`` with long strings cut and long lists trimmed (nesting bounded too)."""
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_CHARS else value[: MAX_STRING_CHARS - 1] + "…"
    if depth >= 6 and isinstance(value, dict | list):
        return "…"
    if isinstance(value, list):
        items = [shorten(v, depth + 1) for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"… {len(value) - MAX_LIST_ITEMS} more")
        return items
    if isinstance(value, dict):
        return {str(k): shorten(v, depth + 1) for k, v in value.items()}
    return value


def compact(value: Any) -> str:
    """Compact JSON of at most MAX_CONTENT_CHARS characters (cut, and marked, if longer)."""
    text = json.dumps(shorten(value), ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_CONTENT_CHARS:
        text = text[: MAX_CONTENT_CHARS - 13] + "…(truncated)"
    return text


def _argument_error(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        if missing:
            path = ".".join(filter(None, [path, missing[0]]))
            return f"argument {path!r} is required"
    return f"argument {path or '(arguments)'!r}: {error.message}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _decode_json(response: FetchResponse, max_bytes: int) -> Any:
    if not 200 <= response.status < 300:
        raise ToolFailed(f"HTTP {response.status}")
    if len(response.body) > max_bytes:
        raise ToolFailed(f"answer larger than {max_bytes} bytes")
    if not response.body.strip():
        return None
    try:
        return json.loads(response.body)
    except ValueError as exc:
        kind = response.headers.get("content-type", "unknown type")
        raise ToolFailed(f"answer is not JSON ({kind})") from exc


class ToolRunner:
    """An agent's custom HTTP tools and (when enabled) web search, for one call.

    ``secrets`` maps variable names to the values the control plane resolved
    (``AgentConfig.tool_secrets``): only those fill ``{{secret:NAME}}`` headers and
    the search key; a name missing from it fails that tool's calls, never sends the
    placeholder.
    """

    def __init__(
        self,
        tools: Sequence[HttpToolSpec],
        web_search: WebSearchConfig | None,
        fetch: Fetch,
        *,
        secrets: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._tools = {t.name: t for t in tools}
        self._validators = {t.name: Draft202012Validator(t.parameters) for t in tools}
        self._fetch = fetch
        self._secrets = dict(secrets or {})
        self._clock = clock
        self._search: SearchProvider | None = None
        self._search_timeout_s = 3.0
        if web_search is not None and web_search.enabled:
            key = self._secrets.get(web_search.api_key_env or "")
            try:
                self._search = provider_for(web_search, key)
                self._search_timeout_s = web_search.timeout_s
                self._validators[WEB_SEARCH] = Draft202012Validator(WEB_SEARCH_PARAMETERS)
            except MissingSearchKey as exc:
                # Not offered at all: a tool that can only fail would have the model
                # promise searches it cannot make.
                log.warning("web search not offered: %s", exc)

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI function-tool schemas, web search last."""
        defs = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in self._tools.values()
        ]
        if self._search is not None:
            defs.append(
                {
                    "type": "function",
                    "function": {
                        "name": WEB_SEARCH,
                        "description": "Search the web for current information the caller "
                        "asks about. Use short queries; answer from the results briefly.",
                        "parameters": WEB_SEARCH_PARAMETERS,
                    },
                }
            )
        return defs

    def has(self, name: str) -> bool:
        return name in self._tools or (name == WEB_SEARCH and self._search is not None)

    async def run(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """Call tool ``name``; never raises (except CancelledError)."""
        started = self._clock()
        try:
            args = self._validated(name, arguments)
            if name == WEB_SEARCH:
                content = await self._web_search(str(args["query"]))
            else:
                content = await self._http(self._tools[name], args)
        except ToolFailed as exc:
            return self._failed(name, str(exc), started)
        except Exception as exc:  # a bug here must cost one tool call, not the call
            log.exception("tool %s failed unexpectedly", name)
            return self._failed(name, f"internal error: {type(exc).__name__}", started)
        return ToolResult(name, True, content, None, self._elapsed(started))

    def _elapsed(self, started: float) -> float:
        return (self._clock() - started) * 1000

    def _failed(self, name: str, error: str, started: float) -> ToolResult:
        return ToolResult(name, False, compact({"error": error}), error, self._elapsed(started))

    def _validated(self, name: str, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        if not self.has(name):
            raise ToolFailed(f"unknown tool {name!r}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                raise ToolFailed("arguments are not JSON") from exc
        args = dict(arguments) if isinstance(arguments, Mapping) else None
        if args is None:
            if arguments is not None:
                raise ToolFailed("arguments must be a JSON object")
            args = {}
        error = best_match(self._validators[name].iter_errors(args))
        if error is not None:
            raise ToolFailed(_argument_error(error))
        return args

    def _resolve_secrets(self, tool: HttpToolSpec) -> dict[str, str]:
        def value(match: Any) -> str:
            secret = self._secrets.get(match.group(1))
            if secret is None:
                raise ToolFailed(f"secret {match.group(1)!r} is not available")
            return secret

        return {k: SECRET_REF.sub(value, v) for k, v in tool.headers.items()}

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        json_body: Any,
        timeout_s: float,
        max_bytes: int,
    ) -> FetchResponse:
        try:
            async with asyncio.timeout(timeout_s + TIMEOUT_GRACE_S):
                return await self._fetch(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    json=json_body,
                    timeout_s=timeout_s,
                    max_bytes=max_bytes,
                )
        except (FetchTimeout, TimeoutError) as exc:
            raise ToolFailed(f"timed out after {timeout_s:g} s") from exc
        except FetchError as exc:
            raise ToolFailed(str(exc) or type(exc).__name__) from exc

    async def _http(self, tool: HttpToolSpec, args: dict[str, Any]) -> str:
        headers = self._resolve_secrets(tool)
        used = set(tool.placeholders())
        url = URL_PLACEHOLDER.sub(
            lambda m: quote(_query_value(args.get(m.group(1), "")), safe=""), tool.url
        )
        rest = {k: v for k, v in args.items() if k not in used}
        sends_body = tool.method in ("POST", "PUT", "PATCH")
        params = None if sends_body else {k: _query_value(v) for k, v in rest.items()} or None
        response = await self._request(
            tool.method,
            url,
            headers={"Accept": "application/json", **headers},
            params=params,
            json_body=rest if sends_body else None,
            timeout_s=tool.timeout_s,
            max_bytes=tool.max_response_bytes,
        )
        data = _decode_json(response, tool.max_response_bytes)
        if data is None:
            return compact({"ok": True, "status": response.status})
        return compact(data)

    async def _web_search(self, query: str) -> str:
        search = self._search
        assert search is not None
        req = search.request(query)
        try:
            response = await self._request(
                req.method,
                req.url,
                headers=req.headers,
                params=req.params,
                json_body=req.json,
                timeout_s=self._search_timeout_s,
                max_bytes=SEARCH_MAX_BYTES,
            )
            hits = search.parse(_decode_json(response, SEARCH_MAX_BYTES))
        except (ToolFailed, SearchFormatError) as exc:
            raise ToolFailed(f"{search.name}: {exc}") from exc
        return compact({"results": [h.as_dict() for h in hits]})
