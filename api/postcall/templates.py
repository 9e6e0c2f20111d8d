"""Payload templates for post-call actions, rendered in Jinja2's sandbox (no
attribute access to internals, no imports).

A template that does not parse or render against a sample call is rejected with 422
when the agent is saved (``api.postcall.delivery_config``) rather than discovered
when a call ends.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=512)  # the same few templates render for every call of an agent
def compile_template(source: str):  # type: ignore[no-untyped-def]
    return _env.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render in the sandbox; TemplateError (undefined name, sandbox violation) propagates."""
    return compile_template(source).render(context)
