"""Payload templates for post-call actions: Jinja2's sandbox, bounded and off the loop.

A template is tenant input. It renders in a worker process
(``api.postcall.template_worker``) with a time limit (the worker is killed and
replaced when it passes it: a nested ``range`` loop cannot freeze the server) and an
output-size limit; the event loop only waits on a pipe. A template that does not
parse, render against a sample call, or stay inside the limits is rejected with 422
when the agent is saved (``api.postcall.delivery_config``) rather than discovered
when a call ends.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from api.postcall import template_worker

DEFAULT_TIMEOUT_S = 1.0
DEFAULT_MAX_CHARS = 1_000_000
WORKERS = 2
STARTUP_TIMEOUT_S = 60.0


class TemplateFailed(Exception):
    """The template could not be rendered; ``kind`` is syntax, render, too_large or
    timeout."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Rendered:
    kind: str  # "ok" or a TemplateFailed kind
    text: str  # the output, or the error message

    def value(self) -> str:
        if self.kind != "ok":
            raise TemplateFailed(self.kind, self.text)
        return self.text


class _Worker:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=template_worker.serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        # The time limit is for rendering, not for starting Python and Jinja2.
        if not self.conn.poll(STARTUP_TIMEOUT_S) or self.conn.recv() != template_worker.READY:
            self.kill()
            raise OSError("the template worker did not start")

    def roundtrip(self, request: tuple[Any, ...], timeout_s: float) -> list[tuple[str, str]]:
        conn: Connection = self.conn
        conn.send(request)
        if not conn.poll(timeout_s):
            raise TimeoutError
        return conn.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class TemplateRenderer:
    """A small pool of worker processes, started on first use."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._size = workers
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker()

    def _give(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def render_batch_blocking(
        self, sources: list[str], context: dict[str, Any], timeout_s: float, max_chars: int
    ) -> list[Rendered]:
        with self._slots:
            try:
                worker = self._take()
            except OSError as exc:
                return [Rendered("timeout", str(exc)) for _ in sources]
            try:
                results = worker.roundtrip((sources, context, max_chars), timeout_s)
            except TimeoutError:
                worker.kill()
                message = f"template rendering took longer than {timeout_s:g} s"
                return [Rendered("timeout", message) for _ in sources]
            except (EOFError, OSError) as exc:  # the worker died (memory cap)
                worker.kill()
                return [Rendered("too_large", f"template worker failed: {exc}") for _ in sources]
            self._give(worker)
        return [Rendered(kind, text) for kind, text in results]

    async def render_batch(
        self,
        sources: list[str],
        context: dict[str, Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> list[Rendered]:
        if not sources:
            return []
        return await asyncio.to_thread(
            self.render_batch_blocking, sources, context, timeout_s, max_chars
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


renderer = TemplateRenderer()


async def render(
    source: str,
    context: dict[str, Any],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """One template, bounded; TemplateFailed on any problem."""
    [result] = await renderer.render_batch(
        [source], context, timeout_s=timeout_s, max_chars=max_chars
    )
    return result.value()
