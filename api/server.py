"""Run the app under uvicorn inside the current event loop (CLI, tests, load runs)."""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import FastAPI

from api.services import VoxlineApp


class BackgroundServer:
    """uvicorn on ``host:port`` (port 0 picks a free one) as a task of this loop. It serves
    any app (tests run stub receivers with it); a voxline app learns the bound port."""

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self.host = host
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on")
        self.server = uvicorn.Server(config)
        self.port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> None:
        self._task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(timeout):
            while not self.server.started:
                if self._task.done():
                    self._task.result()  # raises why it failed
                    raise RuntimeError("server exited during startup")
                await asyncio.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        if isinstance(self.app, VoxlineApp):
            self.app.services.set_listening(self.host, self.port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def media_url(self) -> str:
        return f"ws://{self.host}:{self.port}/media-stream"

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None
