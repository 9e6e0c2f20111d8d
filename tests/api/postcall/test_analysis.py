"""Post-call analysis: junk tolerance against a scripted endpoint, validation rules,
and the real local model on a real call's transcript."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select

from api.postcall.analysis import (
    ANALYSIS_SEED,
    MAX_SUMMARY,
    Analyzer,
    Endpoint,
    Variable,
    grounded,
    parse_json,
    validate,
)
from api.postcall.models import AnalysisJob
from tests.api.stubs.base import Stub, serving
from tests.api.stubs.receiver import webhook_receiver
from voice_core.config import LLMConfig

TRANSCRIPT = [
    {"speaker": "agent", "text": "Luigi's pizza, what can I get you?"},
    {"speaker": "caller", "text": "A large margherita please, for two people."},
    {"speaker": "agent", "text": "Anything else?"},
    {"speaker": "caller", "text": "No thanks, bye."},
]
VARIABLES = [
    Variable("order", "what the caller ordered"),
    Variable("size", "pizza size", "string", ["small", "medium", "large"]),
    Variable("people", "how many people", "integer"),
    Variable("address", "delivery address"),
]


def sse_chunks(model: str, content: str) -> Iterator[str]:
    """``content`` as an OpenAI chat-completion stream, a few characters per chunk."""
    for i in range(0, len(content), 7):
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": {"content": content[i : i + 7]}}],
        }
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


def scripted_llm(replies: list[str], refuse_schema: bool = False) -> Stub:
    """An OpenAI-compatible endpoint answering ``replies`` in order."""
    app = FastAPI()
    stub = Stub(app)

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        item = await stub.record(request)
        body = item.json()
        kind = (body.get("response_format") or {}).get("type")
        if refuse_schema and kind == "json_schema":
            return JSONResponse({"error": {"message": "json_schema unsupported"}}, 400)
        content = replies.pop(0)
        if body.get("stream"):  # the analyzer streams (so a cancelled job stops decoding)
            return StreamingResponse(
                sse_chunks(body["model"], content), media_type="text/event-stream"
            )
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
            }
        )

    return stub


async def test_junk_is_retried_once_and_only_valid_values_are_kept() -> None:
    good_enough = {
        "extracted": {
            "order": "large margherita",
            "size": "huge",
            "people": "2",
            "address": "12 Elm Street",
        },
        "sentiment": {"label": "Positive", "score": 7},
        "summary": "The caller ordered a large margherita. Then more. And more.",
    }
    stub = scripted_llm(["Sure! Here is the analysis you asked for", json.dumps(good_enough)])
    async with serving(stub):
        analyzer = Analyzer()
        result = await analyzer.analyze(Endpoint(stub.base_url + "/v1", "m"), TRANSCRIPT, VARIABLES)
        await analyzer.aclose()
    assert result.attempts == 2 and len(stub.received) == 2
    first = stub.received[0].json()
    assert first["response_format"]["type"] == "json_schema"
    schema = first["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["extracted"]["required"] == ["order", "size", "people", "address"]
    assert first["temperature"] == 0 and stub.received[1].json()["temperature"] > 0
    # Both attempts seeded alike: the sampled retry is reproducible too.
    assert first["seed"] == stub.received[1].json()["seed"] == ANALYSIS_SEED
    assert result.extracted == {
        "order": "large margherita",
        "size": None,
        "people": None,
        "address": None,
    }
    assert result.sentiment == {"label": "positive", "score": 1.0}  # clamped
    assert result.summary == "The caller ordered a large margherita. Then more."
    problems = " | ".join(result.problems)
    assert "size" in problems and "people" in problems and "does not occur" in problems


async def test_an_endpoint_without_json_schema_gets_json_object() -> None:
    reply = {
        "extracted": {"order": None, "size": "large", "people": 2, "address": None},
        "sentiment": {"label": "neutral", "score": 0},
        "summary": "A pizza order.",
    }
    stub = scripted_llm([json.dumps(reply)], refuse_schema=True)
    async with serving(stub):
        analyzer = Analyzer()
        result = await analyzer.analyze(Endpoint(stub.base_url + "/v1", "m"), TRANSCRIPT, VARIABLES)
        await analyzer.aclose()
    kinds = [r.json()["response_format"]["type"] for r in stub.received]
    assert kinds == ["json_schema", "json_object"]
    assert result.extracted["size"] == "large" and result.extracted["people"] == 2


def test_validation_keeps_nothing_it_cannot_check() -> None:
    text = "caller: My name is Maria, I'm thirty and I'd like Tuesday the 5th of March."
    variables = [
        Variable("name", "name"),
        Variable("age", "age", "integer"),
        Variable("day", "date", "date"),
        Variable("vip", "vip", "boolean"),
    ]
    data = {"extracted": {"name": "John Smith", "age": 30, "day": "2025-03-05", "vip": "yes"}}
    result = validate(data, variables, text)
    assert result.extracted == {"name": None, "age": 30, "day": "2025-03-05", "vip": None}
    result = validate({"extracted": {"age": 31, "day": "2025-07-19"}}, variables, text)
    assert result.extracted["age"] is None and result.extracted["day"] is None
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('{"extracted": {}, "summary": "cut off mid') == {
        "extracted": {},
        "summary": "cut off mid",
    }
    assert parse_json("no json") is None
    said = "agent: Bright Smile dental, how can I help? caller: a cleaning for Maria Lopez"
    assert grounded("Maria Lopez, D.D.", said) and grounded("teeth cleaning", said)
    assert not grounded("dental_insurance_number_202305201", said)
    assert not grounded("John Smith", said) and not grounded("...", said)


async def test_a_real_call_is_analysed_by_the_local_model_before_delivery(
    api, running, engine
) -> None:
    s = running.app.state.settings
    s.allow_private_delivery_targets = True
    # This test is about the analysis reaching the payload: on a loaded machine (other
    # suites running beside this one) the call and the model can both be slow.
    s.analysis_wait_s = 600
    receiver = webhook_receiver()
    extraction = [
        {"key": "service", "description": "the dental service the caller asks for"},
        {
            "key": "day",
            "description": "the weekday the caller wants",
            "enum": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        },
        {"key": "insurance_number", "description": "the caller's insurance number"},
    ]
    async with serving(receiver):
        r = await api.post(
            "/api/v1/agents",
            json={
                "name": "Analysed clinic",
                "prompt": {
                    "identity": "You are a dental clinic receptionist.",
                    "style": "One short sentence.",
                },
                "welcome_message": "Hello, Bright Smile dental, how can I help?",
                "end_call": {"silence_timeout_s": 8},
                "extraction": extraction,
                "post_call_actions": [
                    {
                        "channel": "webhook",
                        "on_statuses": ["completed"],
                        "config": {"url": receiver.base_url + "/done"},
                    }
                ],
            },
        )
        assert r.status_code == 201, r.text
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={
                "agent_id": r.json()["id"],
                "to_number": "+15550190001",
                "call_context": {
                    "simulation": {
                        "lines": [
                            "Hi, I would like to book a teeth cleaning.",
                            "Tuesday would be great. Thank you, goodbye.",
                        ]
                    }
                },
            },
        )
        call_id = r.json()["call_id"]
        (sent,) = await receiver.wait_for(1, timeout=400)
    payload: dict[str, Any] = sent.json()
    assert payload["call_id"] == call_id and payload["status"] == "completed"
    assert payload["analysis"]["status"] == "completed", payload["analysis"]
    # The model's reply was parsed and validated: the sentiment (an enum under the
    # grammar, generated before the free-text summary) ...
    assert payload["sentiment"]["label"] in ("positive", "neutral", "negative")
    assert set(payload["extracted"]) == {"service", "day", "insurance_number"}
    assert payload["extracted"]["day"] in (
        None,
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
    )
    # Never invented: a 135M model may put a word of the call in the wrong slot, but a
    # value the call never contained is dropped by validation.
    said = " ".join(line["text"].lower() for line in payload["transcript"])
    for key in ("service", "insurance_number"):  # free text (an enum is a classification)
        value = payload["extracted"][key]
        words = re.findall(r"[a-z0-9]{3,}", str(value).lower())
        assert value is None or any(w in said for w in words), value
    assert any(line["speaker"] == "caller" for line in payload["transcript"])
    detail = (await api.get(f"/api/v1/calls/{call_id}")).json()
    assert detail["summary"] == payload["summary"] and detail["extracted"] == payload["extracted"]
    async with running.app.state.db_sessions() as db:
        job = (
            await db.execute(select(AnalysisJob).where(AnalysisJob.call_id == call_id))
        ).scalar_one()
    assert job.state == "done" and job.latency_ms > 0
    assert job.model == engine.llm_for(LLMConfig()).model  # the local model, not a stub
    # ... and the summary, free text whose content the call's (sampled) transcript
    # decides: validated text (at most two sentences), or null with the reason recorded,
    # never an empty or unbounded string.
    summary = payload["summary"]
    if summary is None:
        assert any(p.startswith("summary:") for p in job.problems), job.problems
    else:
        assert isinstance(summary, str) and summary.strip() and len(summary) <= MAX_SUMMARY
        assert len(re.split(r"(?<=[.!?])\s+", summary.strip())) <= 2, summary
    print(
        f"\nanalysis latency {job.latency_ms:.0f} ms, extracted {payload['extracted']}, "
        f"summary {payload['summary']!r}, problems {job.problems}"
    )
    await asyncio.sleep(0)
