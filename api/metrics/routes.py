"""Where ``/metrics`` is served: off unless the operator opens it.

Two ways, the operator's choice (both may be set):

- ``VOXLINE_METRICS_TOKEN``: the app's own ``/metrics`` answers a scraper that sends
  ``Authorization: Bearer <token>`` (401 otherwise); without a token it is a 404, so
  a public deployment does not show its call volumes and latencies to anyone.
- ``VOXLINE_METRICS_PORT`` (and ``VOXLINE_METRICS_HOST``, default 127.0.0.1): a
  listener of its own serving only ``/metrics``, for a private network or loopback
  that the public proxy does not route; it asks for the token too when one is set.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.metrics.collector import VoxlineMetrics
from api.server import BackgroundServer


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())


async def _scrape(metrics: VoxlineMetrics) -> Response:
    await metrics.refresh()
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def build_router(
    metrics: VoxlineMetrics, token: str | None, *, open_without_token: bool
) -> APIRouter:
    """``/metrics``: behind ``token``; without one, served only if ``open_without_token``
    (the metrics listener's own app), else a 404 as if it did not exist."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if token is None and not open_without_token:
            return PlainTextResponse("Not Found", status_code=404)
        if not _authorized(request, token):
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return await _scrape(metrics)

    return router


class MetricsListener:
    """The metrics' own bind address: a tiny app with only ``/metrics``."""

    def __init__(self, metrics: VoxlineMetrics, host: str, port: int, token: str | None) -> None:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(build_router(metrics, token, open_without_token=True))
        self.server = BackgroundServer(app, host=host, port=port)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
