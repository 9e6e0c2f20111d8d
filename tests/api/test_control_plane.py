"""The control plane over HTTP, on SQLite and PostgreSQL (real server, real models)."""

from __future__ import annotations

import asyncio
import io
import wave

import httpx
import pytest

from api.auth import create_key, create_organization
from gateway.twilio.signature import twilio_signature
from tests.api.conftest import TWILIO_AUTH_TOKEN

AGENT = {
    "name": "Test clinic",
    "prompt": {"identity": "You are a receptionist.", "style": "One short sentence."},
    "welcome_message": "Hello {{name}}, this is the clinic.",
    "extraction": [{"key": "patient_name", "description": "the caller's name"}],
    "end_call": {"silence_timeout_s": 10},
}


async def other_org_client(running) -> httpx.AsyncClient:
    async with running.app.state.db_sessions() as db:
        org = await create_organization(db, "Org B")
        _, key = await create_key(db, org.id, "b")
        await db.commit()
    return running.client(key)


async def test_requests_without_a_valid_key_get_401(running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as anon:
        r = await anon.get("/api/v1/agents")
        assert r.status_code == 401 and "missing API key" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        r = await anon.get("/api/v1/agents", headers={"Authorization": "Bearer vx_nope"})
        assert r.status_code == 401 and "invalid" in r.json()["detail"]


async def test_agent_lifecycle_with_versions_and_restore(api) -> None:
    r = await api.post("/api/v1/agents", json=AGENT)
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["version"] == 1 and agent["spec"]["name"] == "Test clinic"
    # defaults are filled in and visible
    assert agent["spec"]["endpointing"]["end_of_turn_silence_ms"] == 500

    changed = {**AGENT, "name": "Renamed clinic", "welcome_message": "Hi!"}
    r = await api.put(f"/api/v1/agents/{agent['id']}", json=changed)
    assert r.status_code == 200 and r.json()["version"] == 2

    versions = (await api.get(f"/api/v1/agents/{agent['id']}/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["spec"]["name"] == "Test clinic"

    r = await api.post(f"/api/v1/agents/{agent['id']}/versions/1/restore")
    assert r.status_code == 200
    restored = r.json()
    assert restored["version"] == 3 and restored["spec"]["name"] == "Test clinic"

    listed = (await api.get("/api/v1/agents")).json()
    assert agent["id"] in [a["id"] for a in listed]

    assert (await api.delete(f"/api/v1/agents/{agent['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/agents/{agent['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": ""}, "name"),
        ({"endpointing": {"end_of_turn_silence_ms": 5}}, "end_of_turn_silence_ms"),
        ({"extraction": [{"key": "bad key!", "description": "x"}]}, "key"),
        ({"llm": {"temperature": 7}}, "temperature"),
        ({"surprise": 1}, "surprise"),
        ({"post_call_actions": [{"channel": "fax"}]}, "channel"),
    ],
)
async def test_bad_agent_fields_get_422_naming_the_field(api, patch, field) -> None:
    r = await api.post("/api/v1/agents", json={**AGENT, **patch})
    assert r.status_code == 422
    locs = [".".join(str(p) for p in e["loc"]) for e in r.json()["detail"]]
    assert any(field in loc for loc in locs), locs


async def test_a_payload_template_error_is_rejected_at_save(api) -> None:
    bad = {
        **AGENT,
        "post_call_actions": [
            {
                "channel": "webhook",
                "config": {"url": "http://127.0.0.1:9/x", "payload_template": "{{ call.id "},
            }
        ],
    }
    r = await api.post("/api/v1/agents", json=bad)
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"][-1] == "payload_template" and "template error" in err["msg"]
    before = len((await api.get("/api/v1/agents")).json())
    assert len((await api.get("/api/v1/agents")).json()) == before  # nothing half-saved


async def test_oversized_bodies_are_refused(api) -> None:
    huge = {**AGENT, "prompt": {"knowledge": "x" * 2_000_000}}
    r = await api.post("/api/v1/agents", json=huge)
    assert r.status_code == 413


async def test_dispatch_through_the_simulated_carrier_logs_the_whole_call(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550142001",
            "call_context": {"name": "Maria"},
        },
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["call_id"]
    assert r.json()["status"] == "queued"

    detail = await wait_for_status(api, call_id, {"completed"}, timeout=90)
    assert detail["direction"] == "outbound" and detail["to_number"] == "+15550142001"
    assert detail["call_context"] == {"name": "Maria"}
    assert detail["duration_s"] > 1
    speakers = {line["speaker"] for line in detail["transcript"]}
    assert speakers == {"agent", "caller"}
    assert any(
        "clean" in line["text"].lower()
        for line in detail["transcript"]
        if line["speaker"] == "caller"
    )
    assert detail["latency"] and "response" in detail["latency"][0]["stages_ms"]
    assert [s["status"] for s in detail["status_history"]][:2] == ["queued", "ringing"]

    wav = await api.get(f"/api/v1/calls/{call_id}/recording")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getnchannels() == 2 and w.getnframes() / w.getframerate() > 1
    assert detail["recording_url"].endswith(f"/api/v1/calls/{call_id}/recording")


async def wait_for_status(api, call_id: str, statuses: set[str], timeout: float) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            detail = (await api.get(f"/api/v1/calls/{call_id}")).json()
            if detail["status"] in statuses:
                return detail
            await asyncio.sleep(0.5)


async def test_dispatch_validates_numbers_and_agent(api) -> None:
    r = await api.post("/api/v1/calls/dispatch", json={"agent_id": "agt_x", "to_number": "555"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "to_number"
    r = await api.post(
        "/api/v1/calls/dispatch", json={"agent_id": "agt_missing", "to_number": "+15550142001"}
    )
    assert r.status_code == 404 and "agt_missing" in r.json()["detail"]


async def test_call_log_filters_and_cursor_pages(api, running) -> None:
    ids = []
    for i in range(5):
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={
                "agent_id": running.agent_id,
                "to_number": f"+1555014300{i}",
                "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
            },
        )
        ids.append(r.json()["call_id"])
    for call_id in ids:
        await wait_for_status(api, call_id, {"busy"}, timeout=20)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "busy", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/v1/calls", params=params)).json()
        seen += [c["id"] for c in page["data"]]
        assert all(c["status"] == "busy" for c in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))  # no repeats across pages
    assert (await api.get("/api/v1/calls", params={"status": "nonsense"})).status_code == 422
    assert (await api.get("/api/v1/calls", params={"cursor": "@@"})).status_code == 422


async def test_another_organization_sees_nothing_of_ours(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550144000",
            "call_context": {"simulation": {"outcome": "no-answer", "ring_s": 0.05}},
        },
    )
    call_id = r.json()["call_id"]
    async with await other_org_client(running) as b:
        assert (await b.get(f"/api/v1/agents/{running.agent_id}")).status_code == 404
        assert running.agent_id not in [a["id"] for a in (await b.get("/api/v1/agents")).json()]
        assert (await b.get(f"/api/v1/calls/{call_id}")).status_code == 404
        assert (await b.get(f"/api/v1/calls/{call_id}/recording")).status_code == 404
        assert call_id not in [c["id"] for c in (await b.get("/api/v1/calls")).json()["data"]]
        assert (await b.post(f"/api/v1/calls/{call_id}/hangup")).status_code == 404
        r = await b.post(
            "/api/v1/calls/dispatch",
            json={"agent_id": running.agent_id, "to_number": "+15550144001"},
        )
        assert r.status_code == 404
    await wait_for_status(api, call_id, {"no_answer"}, timeout=20)


async def test_hangup_ends_a_live_call(api, running) -> None:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": running.agent_id,
            "to_number": "+15550145000",
            "call_context": {
                "simulation": {"lines": ["Hello, I have a question about my bill."] * 4}
            },
        },
    )
    call_id = r.json()["call_id"]
    await wait_for_status(api, call_id, {"in_progress"}, timeout=30)
    r = await api.post(f"/api/v1/calls/{call_id}/hangup")
    assert r.status_code == 202
    detail = await wait_for_status(api, call_id, {"completed", "cancelled"}, timeout=20)
    assert "hangup" in (detail["end_reason"] or "")
    assert (await api.post(f"/api/v1/calls/{call_id}/hangup")).status_code == 409


async def test_phone_numbers_route_inbound_calls_to_their_agent(api, running) -> None:
    agent = (await api.post("/api/v1/agents", json=AGENT)).json()
    r = await api.post(
        "/api/v1/phone-numbers", json={"number": "+15550146000", "agent_id": agent["id"]}
    )
    assert r.status_code == 201
    assert (
        await api.post("/api/v1/phone-numbers", json={"number": "+15550146000"})
    ).status_code == 409
    assert (await api.post("/api/v1/phone-numbers", json={"number": "12"})).status_code == 422
    form = {
        "CallSid": "CA" + "1" * 32,
        "From": "+15550009999",
        "To": "+15550146000",
        "AccountSid": "AC" + "2" * 32,
    }
    # Signed as Twilio signs (no public URL configured: the request's own URL).
    url = f"{running.base_url}/twilio/voice"
    signature = twilio_signature(TWILIO_AUTH_TOKEN, url, form.items())
    twiml = await api.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
    assert twiml.status_code == 200
    assert f'value="{agent["id"]}"' in twiml.text


async def test_heartbeat_has_the_uptime_kuma_shape(running) -> None:
    await running.app.state.heartbeat.beat_once()
    running.app.state.heartbeat._cache = None
    async with httpx.AsyncClient(base_url=running.base_url) as anon:  # public
        data = (await anon.get("/api/status-page/heartbeat/all")).json()
        names = (await anon.get("/api/status-page/monitors")).json()
    assert set(data) == {"heartbeatList", "uptimeList"}
    assert set(names) == set(data["heartbeatList"])
    by_name = {names[k]: v for k, v in data["heartbeatList"].items()}
    for name in (
        "API",
        "Database",
        "Speech-to-text model",
        "Language model",
        "Text-to-speech model",
    ):
        beat = by_name[name][-1]
        assert beat["status"] == 1, (name, beat)
        assert set(beat) == {"status", "time", "msg", "ping"}
    assert by_name["WebRTC gateway"][-1]["status"] in (1, 2)
    for key, ratio in data["uptimeList"].items():
        assert key.endswith("_24") and 0.0 <= ratio <= 1.0
