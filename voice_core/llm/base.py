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


SEND_DTMF_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "send_dtmf",
        "description": "Press phone keys, e.g. to choose an option in an automated menu.",
        "parameters": {
            "type": "object",
            "properties": {
                "digits": {"type": "string", "description": "keys to press: 0-9, * and #"}
            },
            "required": ["digits"],
        },
    },
}


def transfer_call_tool(targets: list[tuple[str, str]]) -> dict[str, Any]:
    """The ``transfer_call`` tool over the agent's allowed targets, as (name, description):
    the model picks a name from the enum; the number behind it never reaches the model."""
    listed = "; ".join(f"{name}: {about}" if about else name for name, about in targets)
    return {
        "type": "function",
        "function": {
            "name": "transfer_call",
            "description": "Transfer the caller to a person or team when they ask for one or "
            f"you cannot help. Targets: {listed}.",
            "parameters": {
                "type": "object",
                "properties": {
                    "target": {
                        "type": "string",
                        "enum": [name for name, _ in targets],
                        "description": "which target to transfer to",
                    }
                },
                "required": ["target"],
            },
        },
    }
