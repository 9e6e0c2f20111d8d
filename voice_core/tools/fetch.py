"""The one I/O a tool needs: an HTTP request, injected by whoever runs the engine.

voice_core knows nothing of the network policy: the control plane hands the engine
a fetch that checks every target against its egress policy (``api.tools.fetch``),
and tests hand it whatever they like. The runner only sees this interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol


class FetchResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]  # lower-case names
    # At most ``max_bytes + 1`` bytes: the fetch stops reading one byte past the limit,
    # so a body of more than ``max_bytes`` means "too big" without reading all of it.
    body: bytes


class FetchError(Exception):
    """No answer: the target was refused, or the connection failed (the message says
    which, for the model and the call log)."""


class FetchTimeout(FetchError):
    """No complete answer within the timeout."""


class Fetch(Protocol):
    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json: Any = None,
        timeout_s: float,
        max_bytes: int,
    ) -> FetchResponse:
        """One request, no redirects followed; FetchError/FetchTimeout when no answer."""
        ...
