"""Streaming chat completions from any OpenAI-compatible endpoint (openai.AsyncOpenAI)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from voice_core.llm.base import LLMError, LLMEvent, TextDelta, ToolCall
from voice_core.llm.pinned import PinnedTransport

log = logging.getLogger(__name__)


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        pinned_address: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self._extra_body = extra_body or {}
        # Keep-alive connections matter: a new TCP+HTTP setup per turn costs milliseconds.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=httpx.Timeout(timeout_s, connect=3.0),
            max_retries=0,  # a voice turn cannot wait for retries; the caller hears a fallback
            http_client=(
                httpx.AsyncClient(
                    transport=PinnedTransport(pinned_address),
                    timeout=httpx.Timeout(timeout_s, connect=3.0),
                )
                if pinned_address is not None
                else None
            ),
        )

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        temperature: float = 0.6,
        max_tokens: int = 120,
    ) -> AsyncIterator[LLMEvent]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if tools:
            kwargs["tools"] = tools
        if self._extra_body:
            kwargs["extra_body"] = self._extra_body
        try:
            stream = await self._client.chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc
        # Tool-call arguments arrive in fragments keyed by index.
        calls: dict[int, dict[str, str]] = {}
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta is None:
                    continue
                if delta.content:
                    yield TextDelta(delta.content)
                for tc in delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                    if tc.function and tc.function.name:
                        slot["name"] += tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
        except openai.APIError as exc:
            raise LLMError(f"stream broke: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"stream broke: {type(exc).__name__}: {exc}") from exc
        finally:
            await stream.close()
        for slot in calls.values():
            try:
                args = json.loads(slot["arguments"]) if slot["arguments"].strip() else {}
            except json.JSONDecodeError:
                log.warning("tool %s sent arguments that are not JSON: %r", slot["name"], slot)
                args = {}
            yield ToolCall(slot["name"], args if isinstance(args, dict) else {})

    async def aclose(self) -> None:
        await self._client.close()
