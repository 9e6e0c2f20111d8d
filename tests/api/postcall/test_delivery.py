"""Post-call delivery: outbox, retries, dead letters, signatures, every channel, SSRF.

Calls here end busy or unanswered (the simulated carrier finishes those in well
under two seconds): what is tested is delivery, not conversation. Third-party
clouds are local servers (tests/api/stubs) that check each request's shape.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from api.postcall import egress
from api.postcall.signing import sign, verify_signature
from tests.api.stubs.base import serving
from tests.api.stubs.clouds import hubspot, salesforce, slack, whatsapp
from tests.api.stubs.receiver import webhook_receiver

BASE_AGENT: dict[str, Any] = {
    "name": "Delivery test agent",
    "prompt": {"identity": "You are a receptionist."},
    "extraction": [{"key": "order", "description": "what the caller ordered"}],
}


@pytest.fixture(autouse=True)
def delivery_settings(running) -> None:
    """Loopback targets allowed and short backoffs, on the shared server's settings
    (the workers read them at use time)."""
    s = running.app.state.settings
    s.allow_private_delivery_targets = True
    s.tenant_secret_env_allowlist = ["TEST_HUBSPOT_TOKEN", "TEST_SF_TOKEN", "TEST_WA_TOKEN"]
    s.delivery_backoff_base_s = 0.05
    s.delivery_backoff_max_s = 0.3
    s.delivery_max_attempts = 5
    s.delivery_timeout_s = 5.0


async def org_secret(running) -> str:
    from sqlalchemy import select

    from api.db.models import Organization

    async with running.app.state.db_sessions() as db:
        return (
            await db.execute(
                select(Organization.webhook_secret).where(
                    Organization.id == running.app.state.bootstrap.org_id
                )
            )
        ).scalar_one()


async def make_agent(api, actions: list[dict[str, Any]]) -> str:
    r = await api.post("/api/v1/agents", json={**BASE_AGENT, "post_call_actions": actions})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def dispatch(api, agent_id: str, outcome: str = "busy", number: str = "+15550170001") -> str:
    r = await api.post(
        "/api/v1/calls/dispatch",
        json={
            "agent_id": agent_id,
            "to_number": number,
            "call_context": {
                "first_name": "Ana",
                "simulation": {"outcome": outcome, "ring_s": 0.05},
            },
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["call_id"]


async def wait_deliveries(
    api, call_id: str, count: int, states: set[str], timeout: float = 30
) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while True:
            rows = (await api.get("/api/v1/deliveries", params={"call_id": call_id})).json()
            if len(rows) == count and all(d["state"] in states for d in rows):
                return rows
            await asyncio.sleep(0.1)


def test_signature_verifies_and_a_tampered_body_fails() -> None:
    body = b'{"call_id":"call_1","status":"completed"}'
    header = sign("whsec_test", body)
    assert verify_signature("whsec_test", header, body)
    assert verify_signature("whsec_test", header, body.decode())
    assert not verify_signature("whsec_test", header, body.replace(b"completed", b"failed"))
    assert not verify_signature("whsec_other", header, body)
    assert not verify_signature("whsec_test", None, body)
    assert not verify_signature("whsec_test", "t=abc,v1=00", body)
    old = sign("whsec_test", body, timestamp=int(time.time()) - 3600)
    assert not verify_signature("whsec_test", old, body)  # replayed an hour later
    assert verify_signature("whsec_test", old, body, tolerance_s=0)
    # during a secret rotation a header may carry two signatures
    t = int(time.time())
    both = sign("whsec_new", body, t) + "," + sign("whsec_old", body, t).split(",")[1]
    assert verify_signature("whsec_old", both, body) and verify_signature("whsec_new", both, body)


async def test_receiver_500_twice_then_200_is_delivered_once_with_three_attempts(
    api, running
) -> None:
    receiver = webhook_receiver([500, 500, 200])
    async with serving(receiver):
        agent_id = await make_agent(
            api,
            [
                {
                    "channel": "webhook",
                    "on_statuses": ["busy"],
                    "config": {"url": receiver.base_url + "/hook", "headers": {"X-Team": "ops"}},
                }
            ],
        )
        call_id = await dispatch(api, agent_id)
        (delivery,) = await wait_deliveries(api, call_id, 1, {"delivered"})
    assert delivery["attempts"] == 3 and delivery["channel"] == "webhook"
    log = delivery["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert [a["number"] for a in log] == [1, 2, 3]
    assert log[0]["error"] and log[2]["error"] is None and all(a["latency_ms"] > 0 for a in log)
    assert len(receiver.received) == 3
    secret = await org_secret(running)
    keys = {r.headers["x-voxline-idempotency-key"] for r in receiver.received}
    assert keys == {delivery["id"]}  # the same key on every retry
    for r in receiver.received:
        assert verify_signature(secret, r.headers["x-voxline-signature"], r.body)
        assert r.headers["x-voxline-event"] == "call.busy" and r.headers["x-team"] == "ops"
    payload = receiver.received[-1].json()
    assert payload["call_id"] == call_id and payload["status"] == "busy"
    assert payload["to_number"] == "+15550170001" and payload["agent"]["id"] == agent_id
    assert payload["call_context"] == {"first_name": "Ana"}  # the script is not leaked
    assert payload["analysis"]["status"] == "skipped" and "busy" in payload["analysis"]["reason"]
    assert payload["extracted"] is None and payload["transcript"] == []


async def test_a_rejected_delivery_is_dead_lettered_and_can_be_retried(api) -> None:
    receiver = webhook_receiver([410])
    async with serving(receiver):
        agent_id = await make_agent(
            api,
            [
                {
                    "channel": "webhook",
                    "on_statuses": ["no_answer"],
                    "config": {
                        "url": receiver.base_url + "/gone",
                        "method": "PUT",
                        "payload_template": '{"id": {{ call_id | tojson }}, '
                        '"who": {{ call_context.first_name | tojson }}, '
                        '"missing": "{{ call_context.nope }}"}',
                    },
                }
            ],
        )
        call_id = await dispatch(api, agent_id, "no-answer", "+15550170002")
        (dead,) = await wait_deliveries(api, call_id, 1, {"dead"})
        assert dead["attempts"] == 1 and "410" in dead["last_error"]
        assert "not retryable" in dead["last_error"]
        r = await api.post(f"/api/v1/deliveries/{dead['id']}/retry")
        assert r.status_code == 202 and r.json()["state"] == "pending"
        (done,) = await wait_deliveries(api, call_id, 1, {"delivered"})
    assert done["attempts"] == 2 and [a["status_code"] for a in done["attempt_log"]] == [410, 200]
    request = receiver.received[-1]
    assert request.method == "PUT" and request.headers["content-type"] == "application/json"
    assert request.json() == {"id": call_id, "who": "Ana", "missing": ""}
    assert (await api.post("/api/v1/deliveries/dlv_nope/retry")).status_code == 404
    assert (await api.get("/api/v1/deliveries", params={"state": "odd"})).status_code == 422


@pytest.mark.parametrize(
    ("action", "field", "words"),
    [
        (
            {
                "channel": "webhook",
                "config": {"url": "http://127.0.0.1:9/x", "payload_template": "{{ call_id "},
            },
            "payload_template",
            "template error on line",
        ),
        (
            {
                "channel": "webhook",
                "config": {"url": "http://127.0.0.1:9/x", "payload_template": "{{ summry }}"},
            },
            "payload_template",
            "summry",
        ),
        ({"channel": "webhook", "config": {"url": "ftp://x"}}, "url", "http"),
        (
            {
                "channel": "webhook",
                "config": {
                    "url": "http://127.0.0.1:9/x",
                    "headers": {"X-Voxline-Signature": "forged"},
                },
            },
            "headers",
            "set by voxline",
        ),
        ({"channel": "webhook", "config": {}}, "url", "required"),
        ({"channel": "email", "config": {"to": ["not-an-address"]}}, "to", "email"),
        (
            {
                "channel": "slack",
                "config": {"webhook_url": "http://127.0.0.1:9/s", "text_template": "{% for %}"},
            },
            "text_template",
            "template",
        ),
        ({"channel": "whatsapp", "config": {"type": "template"}}, "config", "template_name"),
        ({"channel": "hubspot", "config": {"token_env": "lower case"}}, "token_env", "pattern"),
        (
            {
                "channel": "salesforce",
                "config": {"contact_fields": {"LastName": "{{ extracted.nope }}"}},
            },
            "LastName",
            "nope",
        ),
    ],
)
async def test_bad_post_call_actions_get_422_naming_the_field(api, action, field, words) -> None:
    r = await api.post("/api/v1/agents", json={**BASE_AGENT, "post_call_actions": [action]})
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and words.lower() in e["msg"].lower() for e in errors), errors


async def test_private_targets_are_refused_at_save_and_at_send(api, running) -> None:
    settings = running.app.state.settings
    settings.allow_private_delivery_targets = False
    try:
        for url in (
            "http://127.0.0.1:8080/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
            "http://localhost/x",
            "http://10.1.2.3/x",
        ):
            r = await api.post(
                "/api/v1/agents",
                json={
                    **BASE_AGENT,
                    "post_call_actions": [{"channel": "webhook", "config": {"url": url}}],
                },
            )
            assert r.status_code == 422, url
            (err,) = r.json()["detail"]
            assert err["loc"][-1] == "url" and "refused" in err["msg"], err
        r = await api.post("/api/v1/webhooks/test", json={"url": "http://127.0.0.1:1/x"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
    finally:
        settings.allow_private_delivery_targets = True

    for address in (
        "10.0.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "fe80::1",
        "100.64.0.1",
    ):
        with pytest.raises(egress.BlockedTarget):
            egress.check_literal(
                f"http://[{address}]/" if ":" in address else f"http://{address}/",
                allow_private=False,
            )
    with pytest.raises(egress.BlockedTarget):  # a name that resolves to loopback
        await egress.resolve_checked("localhost", 80, allow_private=False)
    await egress.check_url("http://8.8.8.8/", allow_private=False)  # literal: no DNS needed

    # Saved while allowed, sent while not: the send-time check dead-letters it.
    receiver = webhook_receiver()
    async with serving(receiver):
        agent_id = await make_agent(
            api,
            [
                {
                    "channel": "webhook",
                    "on_statuses": ["busy"],
                    "config": {"url": receiver.base_url.replace("127.0.0.1", "localhost")},
                }
            ],
        )
        settings.allow_private_delivery_targets = False
        try:
            call_id = await dispatch(api, agent_id, "busy", "+15550170003")
            (dead,) = await wait_deliveries(api, call_id, 1, {"dead"})
        finally:
            settings.allow_private_delivery_targets = True
    assert "refused target" in dead["last_error"] and receiver.received == []


async def test_the_webhook_test_endpoint_sends_a_signed_sample(api, running) -> None:
    receiver = webhook_receiver([201])
    async with serving(receiver):
        r = await api.post(
            "/api/v1/webhooks/test",
            json={
                "url": receiver.base_url + "/try",
                "headers": {"X-Env": "staging"},
                "agent_id": running.agent_id,
            },
        )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["ok"] and result["status_code"] == 201 and result["latency_ms"] > 0
    assert "receiver says 201" in result["response_excerpt"]
    (sent,) = receiver.received
    assert sent.headers["x-env"] == "staging" and sent.headers["x-voxline-event"] == "webhook.test"
    assert verify_signature(
        await org_secret(running), sent.headers["x-voxline-signature"], sent.body
    )
    assert json.loads(result["request"]["body"]) == sent.json()
    r = await api.post(
        "/api/v1/webhooks/test",
        json={"url": "http://127.0.0.1:9/x", "payload_template": "{{ nope }}"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "payload_template"]
    # a receiver that is down is a result, not an API error
    r = await api.post("/api/v1/webhooks/test", json={"url": "http://127.0.0.1:9/x"})
    assert r.status_code == 200 and not r.json()["ok"] and r.json()["error"]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # the name aiosmtpd calls
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def smtp_server(running) -> AsyncIterator[_Mailbox]:
    mailbox = _Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    s = running.app.state.settings
    s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_from = (
        "127.0.0.1",
        port,
        "none",
        "calls@voxline.test",
    )
    try:
        yield mailbox
    finally:
        controller.stop()
        s.smtp_host = None


async def test_every_channel_sends_the_documented_request(api, smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_HUBSPOT_TOKEN", "pat-na1-test")
    monkeypatch.setenv("TEST_SF_TOKEN", "00Dsf!token")
    monkeypatch.setenv("TEST_WA_TOKEN", "EAAGwa")
    slack_stub, hs, sf = slack(), hubspot("pat-na1-test"), salesforce("00Dsf!token")
    wa = whatsapp("EAAGwa", "106540352242922")
    async with serving(slack_stub), serving(hs), serving(sf), serving(wa):
        statuses = ["no_answer"]
        actions = [
            {
                "channel": "email",
                "on_statuses": statuses,
                "config": {
                    "to": ["ops@clinic.test"],
                    "cc": ["boss@clinic.test"],
                    "subject_template": "Missed {{ contact_number }}",
                    "body_template": "Hi {{ call_context.first_name }}, {{ status }}",
                },
            },
            {
                "channel": "slack",
                "on_statuses": statuses,
                "config": {"webhook_url": slack_stub.base_url + "/services/T0/B0/xyz"},
            },
            {
                "channel": "hubspot",
                "on_statuses": statuses,
                "config": {
                    "base_url": hs.base_url,
                    "token_env": "TEST_HUBSPOT_TOKEN",
                    "contact_properties": {"firstname": "{{ call_context.first_name }}"},
                },
            },
            {
                "channel": "salesforce",
                "on_statuses": statuses,
                "config": {
                    "instance_url": sf.base_url,
                    "token_env": "TEST_SF_TOKEN",
                    "api_version": "v61.0",
                },
            },
            {
                "channel": "whatsapp",
                "on_statuses": statuses,
                "config": {
                    "base_url": wa.base_url,
                    "token_env": "TEST_WA_TOKEN",
                    "phone_number_id": "106540352242922",
                    "api_version": "v21.0",
                    "type": "template",
                    "template_name": "missed_call",
                    "template_params": ["{{ call_context.first_name }}"],
                },
            },
            {
                "channel": "whatsapp",
                "on_statuses": statuses,
                "config": {
                    "base_url": wa.base_url,
                    "token_env": "TEST_WA_TOKEN",
                    "phone_number_id": "106540352242922",
                    "api_version": "v21.0",
                    "text_template": "Sorry we missed you, {{ call_context.first_name }}",
                },
            },
        ]
        agent_id = await make_agent(api, actions)
        call_id = await dispatch(api, agent_id, "no-answer", "+15550170004")
        rows = await wait_deliveries(api, call_id, len(actions), {"delivered", "dead"})
        # a second call to the same number updates the CRM contacts instead of adding one
        call_2 = await dispatch(api, agent_id, "no-answer", "+15550170004")
        rows_2 = await wait_deliveries(api, call_2, len(actions), {"delivered", "dead"})
    for row in rows + rows_2:
        assert row["state"] == "delivered", row
    assert slack_stub.problems == hs.problems == sf.problems == wa.problems == []

    mails = smtp_server.messages
    assert len(mails) == 2 and mails[0].rcpt_tos == ["ops@clinic.test", "boss@clinic.test"]
    mail = message_from_bytes(mails[0].content)
    assert mail["Subject"] == "Missed +15550170004" and mail["From"] == "calls@voxline.test"
    assert "Hi Ana, no_answer" in mail.get_payload()

    body = slack_stub.received[0].json()
    assert call_id in body["text"] and body["blocks"][0]["type"] == "section"

    assert len(hs.contacts) == 1  # type: ignore[attr-defined]
    (contact,) = hs.contacts.values()  # type: ignore[attr-defined]
    assert contact["properties"] == {"phone": "+15550170004", "firstname": "Ana"}
    paths = [(r.method, r.path) for r in hs.received]
    assert paths == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("POST", "/crm/v3/objects/contacts"),
        ("POST", "/crm/v3/objects/calls"),
        ("POST", "/crm/v3/objects/contacts/search"),
        ("PATCH", f"/crm/v3/objects/contacts/{contact['id']}"),
        ("POST", "/crm/v3/objects/calls"),
    ]
    props = hs.calls[0]["properties"]  # type: ignore[attr-defined]
    assert props["hs_call_status"] == "NO_ANSWER" and props["hs_call_to_number"] == "+15550170004"
    assert props["hs_call_direction"] == "OUTBOUND" and props["hs_call_duration"] == "0"

    assert len(sf.contacts) == 1 and len(sf.tasks) == 2  # type: ignore[attr-defined]
    (sf_contact,) = sf.contacts.values()  # type: ignore[attr-defined]
    assert sf_contact["LastName"] == "Caller +15550170004"
    task = sf.tasks[0]  # type: ignore[attr-defined]
    assert task["TaskSubtype"] == "Call" and task["CallType"] == "Outbound"
    assert task["CallDurationInSeconds"] == 0 and task["WhoId"] in sf.contacts  # type: ignore[attr-defined]

    sent = [r.json() for r in wa.received]
    template = next(m for m in sent if m["type"] == "template")
    assert template["to"] == "15550170004" and template["template"]["name"] == "missed_call"
    assert template["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Ana"}]
    text = next(m for m in sent if m["type"] == "text")
    assert text["text"]["body"] == "Sorry we missed you, Ana"
    assert {r["attempt_log"][0]["status_code"] for r in rows} >= {200, 201, 250}


async def test_a_crm_that_rejects_the_token_dead_letters_without_retrying(api, monkeypatch) -> None:
    monkeypatch.setenv("TEST_HUBSPOT_TOKEN", "wrong")
    hs = hubspot("right")
    async with serving(hs):
        agent_id = await make_agent(
            api,
            [
                {
                    "channel": "hubspot",
                    "on_statuses": ["busy"],
                    "config": {"base_url": hs.base_url, "token_env": "TEST_HUBSPOT_TOKEN"},
                }
            ],
        )
        call_id = await dispatch(api, agent_id, "busy", "+15550170005")
        (dead,) = await wait_deliveries(api, call_id, 1, {"dead"})
    assert dead["attempts"] == 1 and "hubspot contact search: HTTP 401" in dead["last_error"]
    # and a token that is not set at all is named
    monkeypatch.delenv("TEST_HUBSPOT_TOKEN")
    call_id = await dispatch(api, agent_id, "busy", "+15550170006")
    (dead,) = await wait_deliveries(api, call_id, 1, {"dead"})
    assert "TEST_HUBSPOT_TOKEN" in dead["last_error"]


async def test_other_organizations_cannot_see_or_retry_our_deliveries(api, running) -> None:
    from tests.api.test_control_plane import other_org_client

    receiver = webhook_receiver()
    async with serving(receiver):
        agent_id = await make_agent(
            api,
            [{"channel": "webhook", "on_statuses": ["busy"], "config": {"url": receiver.base_url}}],
        )
        call_id = await dispatch(api, agent_id, "busy", "+15550170007")
        (row,) = await wait_deliveries(api, call_id, 1, {"delivered"})
    async with await other_org_client(running) as b:
        assert (await b.get("/api/v1/deliveries", params={"call_id": call_id})).json() == []
        assert (await b.get(f"/api/v1/deliveries/{row['id']}")).status_code == 404
        assert (await b.post(f"/api/v1/deliveries/{row['id']}/retry")).status_code == 404
