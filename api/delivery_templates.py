"""Payload templates for post-call actions, checked when an agent is saved.

Templates run in Jinja2's sandbox (no attribute access to internals, no imports),
and a template that does not parse is rejected with 422 at save time rather than
discovered when a call ends.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# config keys that hold templates, per channel
TEMPLATE_KEYS = ("payload_template", "subject_template", "body_template", "text_template")


def compile_template(source: str):  # type: ignore[no-untyped-def]
    return _env.from_string(source)


def check_templates(spec: Any) -> None:
    errors = []
    for i, action in enumerate(spec.post_call_actions):
        for key in TEMPLATE_KEYS:
            source = action.config.get(key)
            if source is None:
                continue
            if not isinstance(source, str):
                errors.append(
                    {
                        "loc": ["body", "post_call_actions", i, "config", key],
                        "msg": "template must be a string",
                        "type": "value_error",
                    }
                )
                continue
            try:
                compile_template(source)
            except TemplateSyntaxError as exc:
                errors.append(
                    {
                        "loc": ["body", "post_call_actions", i, "config", key],
                        "msg": f"template error on line {exc.lineno}: {exc.message}",
                        "type": "template_syntax",
                    }
                )
    if errors:
        raise HTTPException(422, detail=errors)
