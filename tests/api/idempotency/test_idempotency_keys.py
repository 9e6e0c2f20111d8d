"""Idempotency-Key: a retried create replays the first answer instead of creating twice
(a retried dispatch placed a second call), across processes, for 24 hours."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from api.calls.models import Call
from api.campaigns.models import Campaign
from api.db.models import utcnow
from api.idempotency import claims
from api.idempotency.models import IdempotencyKey
from tests.api.test_control_plane import AGENT
from tests.api.test_keys_and_limits import new_org

BUSY = {"simulation": {"outcome": "busy", "ring_s": 0.05}}


def key() -> str:
    return str(uuid.uuid4())


async def count(running, model, org_id: str) -> int:
    async with running.app.state.db_sessions() as db:
        return (
            await db.execute(select(func.count()).select_from(model).where(model.org_id == org_id))
        ).scalar_one()


async def test_a_retried_dispatch_replays_the_first_answer_and_places_one_call(running) -> None:
    org_id, admin = await new_org(running)
    async with running.client(admin) as api:
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        body = {"agent_id": agent["id"], "to_number": "+15550144001", "call_context": BUSY}
        k = key()
        first = await api.post("/api/v1/calls/dispatch", json=body, headers={"Idempotency-Key": k})
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        # The same body in another key order is the same request.
        again = dict(reversed(list(body.items())))
        retry = await api.post("/api/v1/calls/dispatch", json=again, headers={"Idempotency-Key": k})
        assert retry.status_code == 201
        assert retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
        assert await count(running, Call, org_id) == 1
        # Without the header (or with another key) it is a new call, as before.
        other = await api.post(
            "/api/v1/calls/dispatch", json=body, headers={"Idempotency-Key": key()}
        )
        assert other.status_code == 201 and other.json()["call_id"] != first.json()["call_id"]
        assert await count(running, Call, org_id) == 2


async def test_the_same_key_with_another_body_is_422_naming_the_header(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        k = key()
        r = await api.post("/api/v1/agents", json=AGENT, headers={"Idempotency-Key": k})
        assert r.status_code == 201
        r = await api.post(
            "/api/v1/agents", json={**AGENT, "name": "Other"}, headers={"Idempotency-Key": k}
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        # Another endpoint under the same key is another request too.
        r = await api.post("/api/v1/keys", json={}, headers={"Idempotency-Key": k})
        assert r.status_code == 422


async def test_a_key_is_per_organization(running) -> None:
    _, a = await new_org(running)
    _, b = await new_org(running)
    k = key()
    async with running.client(a) as api_a, running.client(b) as api_b:
        ra = await api_a.post("/api/v1/agents", json=AGENT, headers={"Idempotency-Key": k})
        rb = await api_b.post("/api/v1/agents", json=AGENT, headers={"Idempotency-Key": k})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"] and "idempotent-replayed" not in rb.headers


async def test_a_duplicate_while_the_first_is_in_flight_is_409(running) -> None:
    org_id, admin = await new_org(running)
    k = key()
    body = b'{"name":"in flight"}'
    # What another process holds while its request runs: a claim without a response.
    held = await claims.claim(
        running.app.state.db_sessions,
        org_id,
        k,
        claims.fingerprint("POST", "/api/v1/phone-numbers", body),
    )
    assert isinstance(held, claims.Claimed)
    async with running.client(admin) as api:
        r = await api.post(
            "/api/v1/phone-numbers",
            content=body,
            headers={"Idempotency-Key": k, "Content-Type": "application/json"},
        )
        assert r.status_code == 409 and "in flight" in r.json()["detail"]
        # Once the first one fails, its key is released and a retry runs.
        await claims.release(running.app.state.db_sessions, held.claim_id)
        r = await api.post(
            "/api/v1/phone-numbers",
            json={"number": "+15550144777"},
            headers={"Idempotency-Key": key()},
        )
        assert r.status_code == 201, r.text


async def test_concurrent_duplicates_create_once(running) -> None:
    org_id, admin = await new_org(running)
    async with running.client(admin) as api:
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        k = key()
        body = {
            "name": "once",
            "agent_id": agent["id"],
            "contacts": [{"phone_number": "+15550144101"}],
        }
        answers = await asyncio.gather(
            *(
                api.post("/api/v1/bulk-call", json=body, headers={"Idempotency-Key": k})
                for _ in range(4)
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    assert await count(running, Campaign, org_id) == 1


async def test_an_error_releases_the_key_so_a_corrected_retry_runs(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        k = key()
        body = {"agent_id": "agt_missing", "to_number": "+15550144002", "call_context": BUSY}
        r = await api.post("/api/v1/calls/dispatch", json=body, headers={"Idempotency-Key": k})
        assert r.status_code == 404
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        r = await api.post(
            "/api/v1/calls/dispatch",
            json={**body, "agent_id": agent["id"]},
            headers={"Idempotency-Key": k},
        )
        assert r.status_code == 201, r.text


async def test_a_created_api_key_replays_but_is_not_stored_in_the_clear(running) -> None:
    org_id, admin = await new_org(running)
    k = key()
    async with running.client(admin) as api:
        first = await api.post("/api/v1/keys", json={"name": "ci"}, headers={"Idempotency-Key": k})
        retry = await api.post("/api/v1/keys", json={"name": "ci"}, headers={"Idempotency-Key": k})
    assert first.status_code == retry.status_code == 201
    assert retry.json()["key"] == first.json()["key"]
    async with running.app.state.db_sessions() as db:
        rows = list(
            (
                await db.execute(select(IdempotencyKey).where(IdempotencyKey.org_id == org_id))
            ).scalars()
        )
    assert len(rows) == 1
    assert first.json()["key"].encode() not in rows[0].body and k not in rows[0].key_hash


async def test_keys_expire_after_24_hours_and_are_swept(running) -> None:
    org_id, admin = await new_org(running)
    sessions = running.app.state.db_sessions
    k = key()
    async with running.client(admin) as api:
        first = await api.post("/api/v1/agents", json=AGENT, headers={"Idempotency-Key": k})
    print_ = claims.fingerprint("POST", "/api/v1/agents", first.request.content)
    later = utcnow() + timedelta(seconds=claims.KEEP_S + 1)
    # Within the 24 h: a replay; after them the key is free again.
    assert isinstance(await claims.claim(sessions, org_id, k, print_), claims.Replay)
    assert isinstance(await claims.claim(sessions, org_id, k, print_, now=later), claims.Claimed)
    assert await claims.sweep(sessions, now=later + timedelta(seconds=claims.KEEP_S + 1)) >= 1
    async with sessions() as db:
        left = (
            await db.execute(
                select(func.count())
                .select_from(IdempotencyKey)
                .where(IdempotencyKey.org_id == org_id)
            )
        ).scalar_one()
    assert left == 0


async def test_the_header_is_documented_on_every_creating_post(running) -> None:
    async with running.client() as api:
        spec = (await api.get("/openapi.json")).json()
    for path in [
        "/api/v1/calls/dispatch",
        "/api/v1/bulk-call",
        "/api/v1/agents",
        "/api/v1/phone-numbers",
        "/api/v1/keys",
    ]:
        names = [p["name"] for p in spec["paths"][path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path
        assert "409" in spec["paths"][path]["post"]["responses"], path


async def test_a_retried_csv_upload_replays_though_its_multipart_boundary_changed(running) -> None:
    org_id, admin = await new_org(running)
    async with running.client(admin) as api:
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        settings = json.dumps({"name": "csv", "agent_id": agent["id"]})
        k = key()
        answers = []
        for _ in range(2):  # httpx draws a new boundary for every request
            answers.append(
                await api.post(
                    "/api/v1/bulk-call",
                    files={"file": ("c.csv", b"phone_number\n+15550144201\n", "text/csv")},
                    data={"campaign": settings},
                    headers={"Idempotency-Key": k},
                )
            )
    first, retry = answers
    assert first.status_code == retry.status_code == 201, (first.text, retry.text)
    boundaries = {r.request.headers["content-type"] for r in answers}
    assert len(boundaries) == 2  # other bytes, the same upload
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert await count(running, Campaign, org_id) == 1
