"""LLM providers: anything that streams chat completions and tool calls."""

from voice_core.llm.base import LanguageModel, LLMError, TextDelta, ToolCall

__all__ = ["LLMError", "LanguageModel", "TextDelta", "ToolCall"]
