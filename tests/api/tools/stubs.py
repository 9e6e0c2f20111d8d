"""Local stand-ins for the web-search providers and a customer's API, served on
127.0.0.1. Each checks the documented request (method, path, query or body fields,
auth header), records a problem for anything off, and answers in the documented
shape (the providers' fields voxline reads, plus some it ignores)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.api.stubs.base import Stub, bearer_ok, json_ok

SEARCH_KEY = "test-search-key"
SHOP_TOKEN = "shop-token-123"


def searxng() -> Stub:
    app = FastAPI()
    stub = Stub(app)

    @app.get("/search")
    async def search(request: Request) -> Response:
        item = await stub.record(request)
        if item.query.get("format") != "json" or not item.query.get("q"):
            stub.problem(f"searxng: query {item.query!r}")
            return Response("format not allowed", status_code=403)  # what an instance says
        results = [
            {
                "url": f"https://site{i}.example/page",
                "title": f"Result {i} for {item.query['q']}",
                "content": f"Snippet {i} " + "words " * 100,
                "engine": "duckduckgo",
                "engines": ["duckduckgo"],
                "score": 1.0 / (i + 1),
                "category": "general",
            }
            for i in range(20)  # an instance sends its whole first page
        ]
        return JSONResponse(
            {
                "query": item.query["q"],
                "number_of_results": 20,
                "results": results,
                "answers": [],
                "suggestions": [],
                "infoboxes": [],
                "unresponsive_engines": [],
            }
        )

    return stub


def brave() -> Stub:
    app = FastAPI()
    stub = Stub(app)

    @app.get("/res/v1/web/search")
    async def search(request: Request) -> Response:
        item = await stub.record(request)
        if item.headers.get("x-subscription-token") != SEARCH_KEY:
            stub.problem(f"brave: token {item.headers.get('x-subscription-token')!r}")
            return JSONResponse({"type": "ErrorResponse", "error": {"status": 401}}, 401)
        if not item.query.get("q") or len(item.query["q"]) > 400:
            stub.problem(f"brave: q {item.query.get('q')!r}")
            return JSONResponse({"type": "ErrorResponse", "error": {"status": 422}}, 422)
        count = int(item.query.get("count", "20"))
        if not 1 <= count <= 20:
            stub.problem(f"brave: count {count}")
        if "application/json" not in item.headers.get("accept", ""):
            stub.problem(f"brave: accept {item.headers.get('accept')!r}")
        results = [
            {
                "type": "search_result",
                "title": f"Brave <strong>{item.query['q']}</strong> {i}",
                "url": f"https://brave{i}.example/",
                "description": f"About <strong>{item.query['q']}</strong> &amp; more {i}",
                "language": "en",
            }
            for i in range(count)
        ]
        return JSONResponse(
            {
                "type": "search",
                "query": {"original": item.query["q"]},
                "web": {"type": "search", "results": results},
            }
        )

    return stub


def tavily() -> Stub:
    app = FastAPI()
    stub = Stub(app)

    @app.post("/search")
    async def search(request: Request) -> Response:
        item = await stub.record(request)
        if not bearer_ok(stub, item, SEARCH_KEY):
            return JSONResponse(
                {"detail": {"error": "Unauthorized: missing or invalid API key."}}, 401
            )
        body = json_ok(stub, item) or {}
        if not isinstance(body.get("query"), str) or not body["query"]:
            stub.problem(f"tavily: body {body!r}")
            return JSONResponse({"detail": {"error": "query is required"}}, 400)
        if "api_key" in body:
            stub.problem("tavily: key sent in the body, not the Authorization header")
        if body.get("search_depth", "basic") not in ("basic", "advanced", "fast", "ultra-fast"):
            stub.problem(f"tavily: search_depth {body.get('search_depth')!r}")
        n = body.get("max_results", 5)
        if not isinstance(n, int) or not 0 <= n <= 20:
            stub.problem(f"tavily: max_results {n!r}")
        results = [
            {
                "title": f"Tavily {body['query']} {i}",
                "url": f"https://tavily{i}.example/",
                "content": f"Content {i}",
                "score": 0.9,
                "raw_content": None,
            }
            for i in range(n)
        ]
        return JSONResponse(
            {
                "query": body["query"],
                "answer": None,
                "images": [],
                "results": results,
                "response_time": 0.4,
            }
        )

    return stub


def customer_api() -> Stub:
    """A customer's own API, as an agent's HTTP tools call it."""
    app = FastAPI()
    stub = Stub(app)

    @app.get("/orders/{order_id}")
    async def order(order_id: str, request: Request) -> Response:
        item = await stub.record(request)
        if item.headers.get("authorization") != f"Bearer {SHOP_TOKEN}":
            stub.problem(f"shop: authorization {item.headers.get('authorization')!r}")
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse({"order_id": order_id, "status": "shipped", "eta": "Tuesday"})

    @app.post("/bookings")
    async def book(request: Request) -> Response:
        item = await stub.record(request)
        body = json_ok(stub, item) or {}
        return JSONResponse({"booking_id": 41, "day": body.get("day")}, 201)

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        await stub.record(request)
        await asyncio.sleep(3)
        return JSONResponse({"late": True})

    @app.get("/big")
    async def big(request: Request) -> Response:
        await stub.record(request)
        return JSONResponse({"blob": "x" * 200_000})

    @app.get("/down")
    async def down(request: Request) -> Response:
        await stub.record(request)
        return JSONResponse({"error": "maintenance"}, 503)

    @app.get("/page")
    async def page(request: Request) -> Response:
        await stub.record(request)
        return Response("<html><body>Hello</body></html>", media_type="text/html")

    @app.get("/moved")
    async def moved(request: Request) -> Response:
        await stub.record(request)
        return Response(status_code=302, headers={"Location": "http://169.254.169.254/"})

    return stub
