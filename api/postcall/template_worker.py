"""The process payload templates render in (imports only Jinja2: it starts fast).

Jinja2's sandbox stops attribute tricks but bounds neither CPU nor memory, so a
tenant's template runs here, not in the server: the parent kills this process when
a render passes its time limit (``api.postcall.templates``), the address space is
capped so a huge allocation fails as MemoryError instead of swapping the host, and
``*`` / ``**`` / ``+`` are checked before they build something large (which also
stops Jinja folding ``'a' * 50000000`` into a constant at compile time).
"""

from __future__ import annotations

import operator
from functools import lru_cache
from multiprocessing.connection import Connection
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_VALUE_LEN = 1_000_000  # one string or list built by an operator
MAX_EXPONENT = 4096
MEMORY_LIMIT_BYTES = 1 << 30
READY = "ready"

_OPS = {"*": operator.mul, "**": operator.pow, "+": operator.add}


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class ContextVars(dict):  # type: ignore[type-arg]
    """call_context as templates see it: a key a call did not carry renders as empty
    (call_context differs per call, so the save-time check cannot know its keys,
    and a missing first name should not dead-letter a delivery). Defined here so the
    worker unpickles it without importing the server."""

    def __missing__(self, key: str) -> str:
        return ""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(_OPS)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                n = _size(seq)
                if n is not None and isinstance(times, int) and n * times > MAX_VALUE_LEN:
                    raise SecurityError(f"a value longer than {MAX_VALUE_LEN} is not allowed")
        elif op == "**" and isinstance(right, int) and right > MAX_EXPONENT:
            raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
        elif op == "+":
            a, b = _size(left), _size(right)
            if a is not None and b is not None and a + b > MAX_VALUE_LEN:
                raise SecurityError(f"a value longer than {MAX_VALUE_LEN} is not allowed")
        return _OPS[op](left, right)


_env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=512)  # the same few templates render for every call of an agent
def _compile(source: str) -> Any:
    return _env.from_string(source)


def render_one(source: str, context: dict[str, Any], max_chars: int) -> tuple[str, str]:
    """``("ok", text)`` or ``(kind, message)`` with kind syntax / render / too_large."""
    try:
        template = _compile(source)
    except TemplateSyntaxError as exc:
        return "syntax", f"template error on line {exc.lineno}: {exc.message}"
    out: list[str] = []
    total = 0
    try:
        for chunk in template.generate(context):  # streamed: stop as soon as it is too long
            total += len(chunk)
            if total > max_chars:
                return "too_large", f"template output is longer than {max_chars} characters"
            out.append(chunk)
    except MemoryError:
        return "too_large", "template needs more memory than allowed"
    except Exception as exc:  # undefined name, sandbox violation, a filter on a bad value
        return "render", f"{type(exc).__name__}: {exc}"
    return "ok", "".join(out)


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform: the time limit still holds


def serve(conn: Connection) -> None:
    """Worker loop: ``(sources, context, max_chars)`` in, ``[(kind, text)]`` out."""
    _limit_memory()
    conn.send(READY)
    while True:
        try:
            sources, context, max_chars = conn.recv()
        except (EOFError, OSError):
            return
        conn.send([render_one(s, context, max_chars) for s in sources])
