"""Payload templates for post-call actions, checked when an agent is saved.

Templates run in Jinja2's sandbox (no attribute access to internals, no imports),
and a template that does not parse is rejected with 422 at save time rather than
discovered when a call ends.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import HTTPException
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=512)  # the same few templates render for every call of an agent
def compile_template(source: str):  # type: ignore[no-untyped-def]
    return _env.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render in the sandbox; TemplateError (undefined name, sandbox violation) propagates."""
    return compile_template(source).render(context)


def check_templates(spec: Any) -> None:
    """Save-time checks that need no network: each channel's typed config, and every
    template both parses and renders against a sample call (so ``{{ summry }}`` is a
    422 now, not a dead letter later). Raises HTTPException(422) listing each error."""
    from api.postcall.delivery_config import config_errors

    errors = config_errors(spec)
    if errors:
        raise HTTPException(422, detail=errors)
