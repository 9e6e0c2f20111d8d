"""Issue 14, item 3: an agent's own LLM endpoint never gets the operator's key, and a
call connects to the address the egress check approved, not to a second DNS answer.

A real HTTP server on 127.0.0.1 records what reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.server import BackgroundServer
from voice_core.config import EngineSettings, LLMConfig
from voice_core.engine import VoiceEngine
from voice_core.llm.base import LLMError

OPERATOR_KEY = "sk-operator-secret"


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse({"error": {"message": "stub"}}, status_code=503)

    server = BackgroundServer(app)
    await server.start()
    yield server.base_url, seen
    await server.stop()


def engine_with_operator_llm(operator_url: str) -> VoiceEngine:
    return VoiceEngine(
        EngineSettings(_env_file=None, llm_base_url=operator_url, llm_api_key=OPERATOR_KEY)
    )


async def ask(engine: VoiceEngine, cfg: LLMConfig) -> None:
    with pytest.raises(LLMError):
        async for _ in engine.llm_for(cfg).stream([{"role": "user", "content": "hi"}]):
            pass


async def test_the_operator_key_goes_only_to_the_operator_endpoint(endpoint) -> None:
    base, seen = endpoint
    engine = engine_with_operator_llm("http://127.0.0.1:9/v1")  # the operator's own server
    await ask(engine, LLMConfig(base_url=f"{base}/v1"))  # a tenant's endpoint, no key of its own
    assert OPERATOR_KEY not in seen[-1].get("authorization", "")
    await ask(engine, LLMConfig(base_url=f"{base}/v1", api_key="sk-tenant"))
    assert seen[-1]["authorization"] == "Bearer sk-tenant"
    own = engine_with_operator_llm(f"{base}/v1")
    await ask(own, LLMConfig())
    assert seen[-1]["authorization"] == f"Bearer {OPERATOR_KEY}"


async def test_a_call_connects_to_the_checked_address_under_the_sites_name(endpoint) -> None:
    base, seen = endpoint
    port = base.rsplit(":", 1)[1]
    engine = engine_with_operator_llm("http://127.0.0.1:9/v1")
    # The name does not resolve here; the pinned address is where the request goes.
    cfg = LLMConfig(base_url=f"http://llm.tenant.invalid:{port}/v1", pinned_address="127.0.0.1")
    await ask(engine, cfg)
    assert seen[-1]["host"] == f"llm.tenant.invalid:{port}"
    # A host that did not resolve at the check connects nowhere.
    count = len(seen)
    await ask(engine, cfg.model_copy(update={"pinned_address": "unresolved"}))
    assert len(seen) == count
