"""An agent's tools: custom HTTP functions and live web search (sans-I/O where possible).

``spec`` holds what a tenant configures, ``web_search`` the providers' request and
answer shapes, ``runner`` validates arguments and turns answers into short results,
and ``fetch`` is the one I/O interface, injected by whoever runs the engine.
"""

from voice_core.tools.fetch import Fetch, FetchError, FetchResponse, FetchTimeout
from voice_core.tools.runner import ToolResult, ToolRunner
from voice_core.tools.spec import BUILTIN_TOOL_NAMES, HttpToolSpec, WebSearchConfig

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "Fetch",
    "FetchError",
    "FetchResponse",
    "FetchTimeout",
    "HttpToolSpec",
    "ToolResult",
    "ToolRunner",
    "WebSearchConfig",
]
