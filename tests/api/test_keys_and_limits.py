"""Issue 14, item 6, tried as an attacker would against a real server: keys that cannot be
scoped or revoked, an open live socket that never re-checks its key, no rate limit, no
cap on an organization's concurrent calls, no ceiling on call duration, a signing
secret that can be neither read nor rotated. Each test fails on the code before."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from api.auth import create_key, create_organization
from api.db.models import Organization
from api.keys.guard import guard_of
from api.keys.ratelimit import KeyRateLimiter
from api.postcall import signing
from voxline import signing as sdk_signing

AGENT = {"name": "Limits clinic", "prompt": {"identity": "You are a receptionist."}}


async def new_org(running, scope: str = "admin") -> tuple[str, str]:
    """A fresh organization (so other tests' calls do not count) and one key."""
    async with running.app.state.db_sessions() as db:
        org = await create_organization(db, "Limits org")
        _, key = await create_key(db, org.id, "first", scope)
        await db.commit()
    return org.id, key


def ws_url(running) -> str:
    return running.base_url.replace("http://", "ws://") + "/api/v1/live"


async def test_keys_are_listed_without_secrets_and_created_scoped(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        r = await api.post("/api/v1/keys", json={"name": "dashboard", "scope": "read"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["scope"] == "read" and made["key"].startswith("vx_")
        listed = (await api.get("/api/v1/keys")).json()
        assert {k["name"] for k in listed} == {"first", "dashboard"}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        assert made["key"] not in json.dumps(listed)
        first = next(k for k in listed if k["name"] == "first")
        assert first["scope"] == "admin" and first["last_used_at"] is not None
        bad = await api.post("/api/v1/keys", json={"scope": "root"})
        assert bad.status_code == 422
    async with running.client() as other:  # another organization's admin sees none of them
        theirs = {k["id"] for k in (await other.get("/api/v1/keys")).json()}
        assert made["id"] not in theirs
        assert (await other.delete(f"/api/v1/keys/{made['id']}")).status_code == 404


async def test_a_read_only_key_changes_nothing(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        read = (await api.post("/api/v1/keys", json={"scope": "read"})).json()["key"]
    async with running.client(read) as ro:
        assert (await ro.get("/api/v1/agents")).status_code == 200
        assert (await ro.get("/api/v1/calls")).status_code == 200
        attempts = [
            ro.post("/api/v1/agents", json=AGENT),
            ro.put(f"/api/v1/agents/{agent['id']}", json=AGENT),
            ro.delete(f"/api/v1/agents/{agent['id']}"),
            ro.post(
                "/api/v1/calls/dispatch",
                json={"agent_id": agent["id"], "to_number": "+15550160001"},
            ),
            ro.post("/api/v1/keys", json={"scope": "admin"}),
            ro.post("/api/v1/org/signing-secret/rotate"),
        ]
        for r in await asyncio.gather(*attempts):
            assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert (await ro.get("/api/v1/keys")).status_code == 403
        assert (await ro.get("/api/v1/org/signing-secret")).status_code == 403
        assert (await ro.get(f"/api/v1/agents/{agent['id']}")).json()["version"] == 1


async def test_a_calls_key_dials_but_does_not_manage(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        calls = (await api.post("/api/v1/keys", json={"scope": "calls"})).json()["key"]
    async with running.client(calls) as c:
        r = await c.post(
            "/api/v1/calls/dispatch",
            json={
                "agent_id": agent["id"],
                "to_number": "+15550160002",
                "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
            },
        )
        assert r.status_code == 201, r.text
        assert (await c.post("/api/v1/agents", json=AGENT)).status_code == 403
        assert (await c.delete(f"/api/v1/agents/{agent['id']}")).status_code == 403
        assert (await c.post("/api/v1/keys", json={})).status_code == 403


async def test_revocation_is_immediate_for_requests_and_open_live_sockets(running) -> None:
    _, admin = await new_org(running)
    async with running.client(admin) as api:
        victim = (await api.post("/api/v1/keys", json={"name": "leaked", "scope": "read"})).json()
        headers = {"Authorization": f"Bearer {victim['key']}"}
        async with websockets.connect(ws_url(running), additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            r = await api.delete(f"/api/v1/keys/{victim['id']}")
            assert r.status_code == 204
            revoked_at = time.monotonic()
            async with running.client(victim["key"]) as stolen:
                assert (await stolen.get("/api/v1/agents")).status_code == 401
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(8):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert time.monotonic() - revoked_at < 6
        listed = {k["id"]: k for k in (await api.get("/api/v1/keys")).json()}
        assert listed[victim["id"]]["revoked_at"] is not None
        assert (await api.delete(f"/api/v1/keys/{victim['id']}")).status_code == 204  # idempotent
    with pytest.raises((websockets.InvalidStatus, websockets.ConnectionClosed)):
        async with websockets.connect(ws_url(running), additional_headers=headers) as ws:
            await ws.recv()
            await ws.recv()


async def test_a_key_over_its_rate_gets_429_with_retry_after(running) -> None:
    _, admin = await new_org(running)
    guard = guard_of(running.app)
    saved = guard.rates
    guard.rates = KeyRateLimiter(rate_per_minute=5)
    try:
        async with running.client(admin) as api:
            codes = [(await api.get("/api/v1/agents")).status_code for _ in range(8)]
            assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
            r = await api.get("/api/v1/agents")
            assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 12
        async with running.client() as neighbour:  # another key is not slowed down
            assert (await neighbour.get("/api/v1/agents")).status_code == 200
    finally:
        guard.rates = saved


async def test_concurrent_calls_per_organization_are_capped(running) -> None:
    _, admin = await new_org(running)
    guard = guard_of(running.app)
    saved = guard.slots.cap
    guard.slots.cap = 2
    try:
        async with running.client(admin) as api:
            agent = (await api.post("/api/v1/agents", json=AGENT)).json()
            body = {
                "agent_id": agent["id"],
                "call_context": {"simulation": {"outcome": "busy", "ring_s": 30}},
            }
            burst = [
                api.post("/api/v1/calls/dispatch", json={**body, "to_number": f"+1555016100{i}"})
                for i in range(6)
            ]
            results = await asyncio.gather(*burst)
            codes = sorted(r.status_code for r in results)
            assert codes == [201, 201, 429, 429, 429, 429], [r.text for r in results]
            refused = next(r for r in results if r.status_code == 429)
            assert int(refused.headers["Retry-After"]) >= 1
            assert "concurrent call limit" in refused.json()["detail"]
            for r in results:
                if r.status_code == 201:
                    await api.post(f"/api/v1/calls/{r.json()['call_id']}/hangup")
            # Hung up: the slots are free again.
            r = await api.post(
                "/api/v1/calls/dispatch",
                json={
                    **body,
                    "to_number": "+15550161010",
                    "call_context": {"simulation": {"outcome": "busy", "ring_s": 0.05}},
                },
            )
            assert r.status_code == 201, r.text
    finally:
        guard.slots.cap = saved


async def test_agent_max_duration_has_a_ceiling(running) -> None:
    _, admin = await new_org(running)
    ceiling = running.app.state.settings.max_call_duration_s
    too_long = {**AGENT, "end_call": {"max_duration_s": ceiling + 1}}
    async with running.client(admin) as api:
        r = await api.post("/api/v1/agents", json=too_long)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "end_call", "max_duration_s"]
        agent = (await api.post("/api/v1/agents", json=AGENT)).json()
        r = await api.put(f"/api/v1/agents/{agent['id']}", json=too_long)
        assert r.status_code == 422
        ok = {**AGENT, "end_call": {"max_duration_s": ceiling}}
        assert (await api.put(f"/api/v1/agents/{agent['id']}", json=ok)).status_code == 200


async def test_signing_secret_is_readable_and_rotates_with_an_overlap(running) -> None:
    org_id, admin = await new_org(running)
    body = b'{"event": "call.completed"}'
    async with running.client(admin) as api:
        old = (await api.get("/api/v1/org/signing-secret")).json()
        assert old["secret"].startswith("whsec_") and old["previous_valid_until"] is None
        rotated = (await api.post("/api/v1/org/signing-secret/rotate")).json()
        new = rotated["secret"]
        assert new != old["secret"] and rotated["previous_valid_until"] is not None
        assert (await api.get("/api/v1/org/signing-secret")).json()["secret"] == new

        # What the delivery worker signs with (org.webhook_secret) carries both.
        async with running.app.state.db_sessions() as db:
            org = await db.get(Organization, org_id)
            header = signing.sign(org.webhook_secret, body)
        assert header.count("v1=") == 2
        for secret in (old["secret"], new):
            assert sdk_signing.verify_signature(secret, header, body)
            assert signing.verify_signature(secret, header, body)
        assert not sdk_signing.verify_signature("whsec_someone_else", header, body)

        # Ending the overlap: only the new secret signs.
        r = await api.post("/api/v1/org/signing-secret/rotate", json={"overlap_s": 0})
        newest = r.json()["secret"]
        async with running.app.state.db_sessions() as db:
            org = await db.get(Organization, org_id)
            header = signing.sign(org.webhook_secret, body)
        assert header.count("v1=") == 1
        assert sdk_signing.verify_signature(newest, header, body)
        assert not sdk_signing.verify_signature(new, header, body)


async def test_unauthenticated_requests_still_get_401(running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as anon:
        assert (await anon.get("/api/v1/keys")).status_code == 401
        assert (await anon.delete("/api/v1/keys/key_x")).status_code == 401


def test_an_agent_saved_before_a_lower_ceiling_is_clamped_at_load() -> None:
    from api.agents.schemas import AgentSpec
    from api.settings import ServerSettings

    spec = AgentSpec.model_validate({**AGENT, "end_call": {"max_duration_s": 3000}})
    lowered = ServerSettings(_env_file=None, max_call_duration_s=600)
    assert spec.to_agent_config(settings=lowered).end_call.max_duration_s == 600
    roomy = ServerSettings(_env_file=None, max_call_duration_s=7200)
    assert spec.to_agent_config(settings=roomy).end_call.max_duration_s == 3000


async def test_the_webhook_test_route_signs_with_both_secrets_during_the_overlap(running) -> None:
    from tests.api.stubs.base import serving
    from tests.api.stubs.receiver import webhook_receiver

    _, admin = await new_org(running)
    receiver = webhook_receiver([200])
    settings = running.app.state.settings
    saved, settings.allow_private_delivery_targets = settings.allow_private_delivery_targets, True
    async with running.client(admin) as api, serving(receiver):
        old = (await api.get("/api/v1/org/signing-secret")).json()["secret"]
        new = (await api.post("/api/v1/org/signing-secret/rotate")).json()["secret"]
        r = await api.post("/api/v1/webhooks/test", json={"url": receiver.base_url + "/hook"})
        settings.allow_private_delivery_targets = saved  # the receiver is on loopback
        assert r.status_code == 200 and r.json()["ok"], r.text
    (sent,) = receiver.received
    header = sent.headers["x-voxline-signature"]
    # A receiver still configured with the old secret accepts the test as it will the
    # real deliveries (before, the test route signed with the new secret only).
    assert header.count("v1=") == 2
    for secret in (old, new):
        assert sdk_signing.verify_signature(secret, header, sent.body)
