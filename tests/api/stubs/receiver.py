"""A webhook receiver whose answers are scripted (500, 500, 200, or hang)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request, Response

from tests.api.stubs.base import Stub


def webhook_receiver(script: list[int | str] | None = None, default: int = 200) -> Stub:
    """Answers the statuses in ``script`` in order, then ``default``; "hang" never answers."""
    app = FastAPI()
    stub = Stub(app)
    queue = list(script or [])

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH"])
    async def receive(path: str, request: Request) -> Response:
        await stub.record(request)
        answer = queue.pop(0) if queue else stub.default  # type: ignore[attr-defined]
        if answer == "hang":
            # until the test lets go (a server shutting down waits for its handlers)
            await asyncio.wait_for(stub.release.wait(), 60)  # type: ignore[attr-defined]
            return Response("released", status_code=503)
        return Response(f"receiver says {answer}", status_code=int(answer))

    stub.default = default  # type: ignore[attr-defined]
    stub.release = asyncio.Event()  # type: ignore[attr-defined]
    return stub
