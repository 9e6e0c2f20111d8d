from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


LLMEvent = TextDelta | ToolCall


class LLMError(RuntimeError):
    """The endpoint failed (down, timed out, malformed stream); the reason is in the message."""


class LanguageModel(Protocol):
    def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        temperature: float = 0.6,
        max_tokens: int = 120,
    ) -> AsyncIterator[LLMEvent]: ...


END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "Hang up the call. Use it when the caller says goodbye or the "
        "conversation is complete, after saying a short goodbye.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "why the call ends"}},
            "required": [],
        },
    },
}
