"""Commands between processes (Redis pub/sub): reach a call another process carries.

A call's media lives in the process whose socket carries it; any process can be
asked to hang it up. With Redis configured, a process that does not carry the
call publishes the command and the carrying process acts on it. Without Redis
there is one process and nothing to forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class CommandBus:
    def __init__(self, redis_url: str, prefix: str, handler: Handler) -> None:
        self.redis_url = redis_url
        self.channel = f"{prefix}:commands"
        self.origin = uuid.uuid4().hex[:12]
        self._handler = handler
        self._redis: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self.redis_url, decode_responses=True)
        self._task = asyncio.create_task(self._listen(), name="command-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, command: dict[str, Any]) -> None:
        await self._redis.publish(self.channel, json.dumps({**command, "origin": self.origin}))

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        command = json.loads(message["data"])
                    except (TypeError, ValueError):
                        log.warning("ignoring a malformed command: %r", message.get("data"))
                        continue
                    if command.get("origin") == self.origin:
                        continue
                    try:
                        await self._handler(command)
                    except Exception:
                        log.exception("command %s failed", command.get("type"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted: resubscribe
                log.warning("command bus lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(1)
