"""A recording FastAPI app served on 127.0.0.1, and helpers shared by the stubs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from api.server import BackgroundServer


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stub:
    app: FastAPI
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # shape violations seen
    base_url: str = ""
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, request: Request) -> Received:
        item = Received(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
        )
        self.received.append(item)
        self._arrived.set()
        return item

    def problem(self, text: str) -> None:
        self.problems.append(text)

    async def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received


@asynccontextmanager
async def serving(stub: Stub) -> AsyncIterator[Stub]:
    server = BackgroundServer(stub.app)
    await server.start()
    stub.base_url = server.base_url
    try:
        yield stub
    finally:
        await server.stop()


def bearer_ok(stub: Stub, item: Received, token: str) -> bool:
    if item.headers.get("authorization") != f"Bearer {token}":
        stub.problem(
            f"{item.method} {item.path}: bad Authorization {item.headers.get('authorization')!r}"
        )
        return False
    return True


def json_ok(stub: Stub, item: Received) -> Any:
    if not item.headers.get("content-type", "").startswith("application/json"):
        stub.problem(
            f"{item.method} {item.path}: content-type {item.headers.get('content-type')!r}"
        )
    try:
        return item.json()
    except ValueError:
        stub.problem(f"{item.method} {item.path}: body is not JSON")
        return None
