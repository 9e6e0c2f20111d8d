"""Bulk-call campaigns over HTTP through the simulated carrier, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from api.live.sse import parse_stream

BUCKETS = ("queued", "in_progress", "completed", "failed", "busy", "no_answer", "voicemail")

QUICK_AGENT = {
    "name": "Campaign agent",
    "prompt": {"identity": "You confirm appointments.", "style": "Answer in five words."},
    "welcome_message": "Hi, quick reminder.",
    "llm": {"max_tokens": 16},
    "end_call": {"silence_timeout_s": 8},
}


def contact(i: int, **simulation) -> dict:
    return {"phone_number": f"+1555017{i:04d}", "first_name": f"C{i}", "simulation": simulation}


@pytest.fixture
async def quick_agent(api) -> str:
    return (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]


async def poll_until_done(api, bulk_id: int, concurrency: int, timeout: float) -> list[dict]:
    """Polls live status like a dashboard; checks the invariants at every poll."""
    polls = []
    async with asyncio.timeout(timeout):
        while True:
            r = await api.get(f"/api/v1/bulk-call/{bulk_id}/live-status")
            body = r.json()
            assert set(body) == {"status", "bulk_call_id", "campaign_status", "summary"}
            s = body["summary"]
            assert sum(s[b] for b in BUCKETS) == s["total_contacts"], s
            assert s["in_progress"] <= concurrency, s
            polls.append(body)
            if body["campaign_status"] in ("completed", "cancelled", "failed"):
                return polls
            await asyncio.sleep(0.15)


async def test_a_30_contact_campaign_with_mixed_outcomes_and_retries(api, running, quick_agent):
    contacts = (
        [contact(i, outcome="answer", lines=["Yes, I will be there, bye."]) for i in range(3)]
        + [contact(i, outcome="busy", ring_s=0.1) for i in range(3, 12)]
        + [contact(i, outcomes=["busy", "no-answer"], ring_s=0.1) for i in range(12, 18)]
        + [contact(i, outcome="failed") for i in range(18, 24)]
        + [contact(i, outcomes=["no-answer", "failed"], ring_s=0.1) for i in range(24, 30)]
    )
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "reminders",
            "agent_id": quick_agent,
            "contacts": contacts,
            "concurrency": 3,
            "retry": {"on": ["busy", "no_answer"], "max_retries": 1, "delay_s": 0.2},
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["accepted"] == 30 and created["rejected"] == []
    bulk_id = created["id"]

    async def read_events() -> list[dict]:
        async with (
            running.client() as c,
            c.stream("GET", f"/api/v1/bulk-call/{bulk_id}/events", timeout=180) as resp,
        ):
            assert resp.headers["content-type"].startswith("text/event-stream")
            raw = "".join([chunk async for chunk in resp.aiter_text()])
        return parse_stream(raw)

    events_task = asyncio.create_task(read_events())
    polls = await poll_until_done(api, bulk_id, concurrency=3, timeout=180)
    final = polls[-1]
    assert final["campaign_status"] == "completed"
    assert final["summary"] == {
        "total_contacts": 30,
        "queued": 0,
        "in_progress": 0,
        "completed": 3,
        "busy": 9,
        "no_answer": 6,
        "failed": 12,
        "voicemail": 0,
    }
    # retries per policy: busy and no_answer retried once, failed never
    page = (await api.get(f"/api/v1/bulk-call/{bulk_id}/contacts", params={"limit": 100})).json()
    attempts = {c["phone_number"]: c["attempts"] for c in page["data"]}
    calls = {c["phone_number"]: c["call_ids"] for c in page["data"]}
    for i in range(30):
        n = f"+1555017{i:04d}"
        expected = 1 if i < 3 or 18 <= i < 24 else 2
        assert attempts[n] == expected, (n, attempts[n])
        assert len(calls[n]) == expected
    # every call is in the call log, linked to the campaign, with the contact's variables
    log = (await api.get("/api/v1/calls", params={"bulk_call_id": bulk_id, "limit": 200})).json()
    assert len(log["data"]) == sum(attempts.values())
    assert all(c["call_context"]["first_name"].startswith("C") for c in log["data"])
    assert Counter(c["status"] for c in log["data"])["completed"] == 3

    events = await asyncio.wait_for(events_task, 30)
    summaries = [json.loads(e["data"]) for e in events if e["event"] == "summary"]
    assert len(summaries) >= 3  # pushed as the campaign progressed
    for s in summaries:
        assert sum(s["summary"][b] for b in BUCKETS) == 30
    statuses = [json.loads(e["data"])["campaign_status"] for e in events if e["event"] == "status"]
    assert statuses[-1] == "completed"


async def test_pause_stops_new_dials_resume_continues_cancel_stops(api, quick_agent) -> None:
    contacts = [contact(i, outcome="busy", ring_s=0.4) for i in range(100, 110)]
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "pausable",
            "agent_id": quick_agent,
            "contacts": contacts,
            "concurrency": 1,
            "retry": {"on": [], "max_retries": 0},
        },
    )
    bulk_id = r.json()["id"]

    async def dialed() -> int:
        page = (await api.get(f"/api/v1/bulk-call/{bulk_id}/contacts")).json()
        return sum(c["attempts"] for c in page["data"])

    async with asyncio.timeout(20):
        while await dialed() < 1:
            await asyncio.sleep(0.1)
    r = await api.post(f"/api/v1/bulk-call/{bulk_id}/pause")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    await asyncio.sleep(1.5)  # the in-flight call ends; nothing new is dialed
    paused_at = await dialed()
    await asyncio.sleep(1.0)
    assert await dialed() == paused_at <= 2
    live = (await api.get(f"/api/v1/bulk-call/{bulk_id}/live-status")).json()
    assert live["campaign_status"] == "paused" and live["summary"]["in_progress"] == 0

    assert (await api.post(f"/api/v1/bulk-call/{bulk_id}/resume")).json()["status"] == "in_progress"
    async with asyncio.timeout(20):
        while await dialed() < paused_at + 2:
            await asyncio.sleep(0.1)
    r = await api.post(f"/api/v1/bulk-call/{bulk_id}/cancel")
    assert r.json()["status"] == "cancelled"
    await asyncio.sleep(1.5)
    after_cancel = await dialed()
    await asyncio.sleep(1.0)
    assert await dialed() == after_cancel < 10
    page = (await api.get(f"/api/v1/bulk-call/{bulk_id}/contacts")).json()["data"]
    assert {c["state"] for c in page if c["attempts"] == 0} == {"cancelled"}
    live = (await api.get(f"/api/v1/bulk-call/{bulk_id}/live-status")).json()
    s = live["summary"]
    assert sum(s[b] for b in BUCKETS) == 10 and s["in_progress"] == 0
    assert (await api.post(f"/api/v1/bulk-call/{bulk_id}/resume")).status_code == 409


async def test_contacts_can_be_added_to_a_running_campaign(api, quick_agent) -> None:
    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "growing",
            "agent_id": quick_agent,
            "concurrency": 2,
            "contacts": [contact(200, outcome="busy", ring_s=0.1)],
            "retry": {"on": []},
        },
    )
    bulk_id = r.json()["id"]
    r = await api.post(
        f"/api/v1/bulk-call/{bulk_id}/contacts",
        json={
            "contacts": [
                contact(201, outcome="busy", ring_s=0.1),
                {"phone_number": "+15550170200"},
                {"phone_number": "12345"},
            ]
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1
    assert sorted(x["reason"] for x in body["rejected"]) == [
        "duplicate phone_number",
        "phone_number must be E.164, like +14155550123",
    ]
    polls = await poll_until_done(api, bulk_id, concurrency=2, timeout=30)
    assert polls[-1]["summary"]["total_contacts"] == 2 and polls[-1]["summary"]["busy"] == 2


@pytest.mark.parametrize(
    ("patch", "status", "field"),
    [
        ({"schedule": {"timezone": "Mars/Olympus"}}, 422, "timezone"),
        ({"concurrency": 0}, 422, "concurrency"),
        ({"contacts": None, "contacts_csv": ""}, 422, "contacts_csv"),
        ({"contacts": None, "contacts_csv": "name\nAnn\n"}, 422, "contacts_csv"),
        ({"contacts": []}, 422, "contacts"),
        ({"calling_window": {"start": "09:00", "end": "09:00"}}, 422, "calling_window"),
        ({"retry": {"on": ["maybe"]}}, 422, "on"),
    ],
)
async def test_bad_campaigns_get_a_clear_4xx(api, quick_agent, patch, status, field) -> None:
    body = {"name": "bad", "agent_id": quick_agent, "contacts": [contact(300)], **patch}
    r = await api.post("/api/v1/bulk-call", json=body)
    assert r.status_code == status, r.text
    assert field in json.dumps(r.json()["detail"])


async def test_unknown_agent_and_all_rows_invalid(api, quick_agent) -> None:
    r = await api.post(
        "/api/v1/bulk-call",
        json={"name": "x", "agent_id": "agt_nope", "contacts": [contact(1)]},
    )
    assert r.status_code == 404
    r = await api.post(
        "/api/v1/bulk-call",
        json={"name": "x", "agent_id": quick_agent, "contacts": [{"phone_number": "12"}]},
    )
    assert r.status_code == 422
    assert r.json()["detail"]["rejected"][0]["row"] == 1


async def test_csv_upload_as_multipart(api, quick_agent) -> None:
    csv_text = "phone_number,first_name\n+15550170400,Eve\n+15550170401,Finn\nnope,Bad\n"
    r = await api.post(
        "/api/v1/bulk-call",
        files={"file": ("contacts.csv", csv_text.encode(), "text/csv")},
        data={
            "campaign": json.dumps(
                {
                    "name": "csv",
                    "agent_id": quick_agent,
                    "concurrency": 1,
                    "schedule": {"start_at": "2099-01-01T09:00:00", "timezone": "Europe/Paris"},
                }
            )
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"][0]["row"] == 3
    assert body["status"] == "scheduled"  # starts in 2099: nothing is dialed
    await asyncio.sleep(1.0)
    live = (await api.get(f"/api/v1/bulk-call/{body['id']}/live-status")).json()
    assert live["campaign_status"] == "scheduled" and live["summary"]["queued"] == 2
    contacts = (await api.get(f"/api/v1/bulk-call/{body['id']}/contacts")).json()["data"]
    assert contacts[0]["variables"] == {"first_name": "Eve"}
    await api.post(f"/api/v1/bulk-call/{body['id']}/cancel")


async def test_another_org_cannot_see_or_control_a_campaign(api, running, quick_agent) -> None:
    from tests.api.test_control_plane import other_org_client

    r = await api.post(
        "/api/v1/bulk-call",
        json={
            "name": "private",
            "agent_id": quick_agent,
            "contacts": [contact(500)],
            "schedule": {"start_at": "2099-01-01T00:00:00Z"},
        },
    )
    bulk_id = r.json()["id"]
    b: httpx.AsyncClient
    async with await other_org_client(running) as b:
        for method, path in [
            ("GET", f"/api/v1/bulk-call/{bulk_id}"),
            ("GET", f"/api/v1/bulk-call/{bulk_id}/live-status"),
            ("GET", f"/api/v1/bulk-call/{bulk_id}/contacts"),
            ("POST", f"/api/v1/bulk-call/{bulk_id}/cancel"),
        ]:
            assert (await b.request(method, path)).status_code == 404
        assert bulk_id not in [x["id"] for x in (await b.get("/api/v1/bulk-call")).json()]
        r = await b.post(
            "/api/v1/bulk-call",
            json={"name": "steal", "agent_id": quick_agent, "contacts": [contact(501)]},
        )
        assert r.status_code == 404
    await api.post(f"/api/v1/bulk-call/{bulk_id}/cancel")


async def test_a_campaign_shares_the_organizations_cap_with_its_other_calls(running) -> None:
    """Issue 14: campaign dialing counted only campaign calls, so an organization at its
    cap with API or inbound calls still got a campaign's full concurrency on top."""
    from api.auth import create_key, create_organization

    async with running.app.state.db_sessions() as db:
        org = await create_organization(db, "Capped campaigns")
        _, key = await create_key(db, org.id, "k", "admin")
        await db.commit()
    dispatcher = running.app.state.dispatcher
    saved = dispatcher.org_max_concurrent
    dispatcher.org_max_concurrent = 2
    try:
        async with running.client(key) as api:
            agent = (await api.post("/api/v1/agents", json=QUICK_AGENT)).json()["id"]
            ringing = await api.post(
                "/api/v1/calls/dispatch",
                json={
                    "agent_id": agent,
                    "to_number": "+15550179990",
                    "call_context": {"simulation": {"outcome": "busy", "ring_s": 30}},
                },
            )
            assert ringing.status_code == 201, ringing.text
            r = await api.post(
                "/api/v1/bulk-call",
                json={
                    "name": "capped",
                    "agent_id": agent,
                    "contacts": [contact(900 + i, outcome="busy", ring_s=0.4) for i in range(4)],
                    "concurrency": 3,
                    "retry": {"on": [], "max_retries": 0},
                },
            )
            assert r.status_code == 201, r.text
            polls = await poll_until_done(api, r.json()["id"], concurrency=1, timeout=60)
            assert polls[-1]["summary"]["busy"] == 4  # all dialed, one at a time
            await api.post(f"/api/v1/calls/{ringing.json()['call_id']}/hangup")
    finally:
        dispatcher.org_max_concurrent = saved
