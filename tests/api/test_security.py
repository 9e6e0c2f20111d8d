"""Attack tests for issue 14, items 3, 5 and 7: each is what an attacker tried against
the old code (and got), now refused."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from typing import Any

import httpx
import pytest

from api.agents.schemas import AgentSpec
from api.middleware import SecurityHeaders
from api.postcall import egress
from api.postcall.channels.base import DeliveryFailed, SendContext
from api.postcall.logsafe import safe_id, safe_text
from api.settings import ServerSettings
from tests.api.test_control_plane import other_org_client

AGENT: dict[str, Any] = {"name": "Security test agent"}


def _number() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def _locs(r: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["detail"]]


@pytest.fixture
def operator(running):
    """The shared server's settings, restored after each test."""
    s = running.app.state.settings
    saved = (list(s.tenant_secret_env_allowlist), s.allow_private_delivery_targets)
    s.allow_private_delivery_targets = False
    yield s
    s.tenant_secret_env_allowlist, s.allow_private_delivery_targets = saved


# -- 3. secrets stay home --------------------------------------------------------------


async def test_token_env_naming_a_server_variable_is_refused_at_save(api, operator) -> None:
    for channel in ("hubspot", "salesforce", "whatsapp"):
        action = {"channel": channel, "config": {"token_env": "VOXLINE_TWILIO_AUTH_TOKEN"}}
        r = await api.post("/api/v1/agents", json={**AGENT, "post_call_actions": [action]})
        assert r.status_code == 422, r.text
        assert ["body", "post_call_actions", 0, "config", "token_env"] in _locs(r)
        assert "VOXLINE_TENANT_SECRET_ENV_ALLOWLIST" in r.text


async def test_an_allow_listed_token_env_is_accepted(api, operator) -> None:
    operator.tenant_secret_env_allowlist = ["TENANT_HUBSPOT_TOKEN"]
    action = {
        "channel": "hubspot",
        "config": {"token_env": "TENANT_HUBSPOT_TOKEN", "base_url": "https://api.hubapi.com"},
    }
    r = await api.post("/api/v1/agents", json={**AGENT, "post_call_actions": [action]})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("channel", "field", "url"),
    [
        ("hubspot", "base_url", "https://collector.attacker.example"),
        ("salesforce", "instance_url", "https://salesforce.com.attacker.example"),
        ("whatsapp", "base_url", "https://graph.facebook.com.attacker.example"),
    ],
)
async def test_operator_token_is_not_sent_to_a_tenant_url(
    api, operator, channel, field, url
) -> None:
    action = {"channel": channel, "config": {field: url}}
    r = await api.post("/api/v1/agents", json={**AGENT, "post_call_actions": [action]})
    assert r.status_code == 422, r.text
    assert ["body", "post_call_actions", 0, "config", field] in _locs(r)


def _ctx(**settings: Any) -> SendContext:
    s = ServerSettings(_env_file=None, hubspot_token="operator-secret", **settings)
    return SendContext(http=None, settings=s, payload={}, secret="x", attempt=1)  # type: ignore[arg-type]


def test_send_time_refuses_what_save_would_refuse(monkeypatch) -> None:
    """A spec saved before the allow-list shrank is refused again when it sends."""
    monkeypatch.setenv("VOXLINE_DATABASE_URL", "postgresql://u:secret@db/x")
    ctx = _ctx()
    with pytest.raises(DeliveryFailed) as caught:
        ctx.token("VOXLINE_DATABASE_URL", None, "HubSpot", provider="hubspot", url="https://x.io")
    assert not caught.value.retryable and "secret@db" not in str(caught.value)
    with pytest.raises(DeliveryFailed):
        ctx.token(None, "operator-secret", "HubSpot", provider="hubspot", url="https://evil.io")
    # the provider's own host, or the operator's configured base, gets the operator token
    assert (
        ctx.token(
            None, "operator-secret", "HubSpot", provider="hubspot", url="https://api.hubapi.com"
        )
        == "operator-secret"
    )
    sf = _ctx(salesforce_instance_url="https://acme.my.salesforce.com")
    assert (
        sf.token(
            None, "t", "Salesforce", provider="salesforce", url="https://other.my.salesforce.com"
        )
        == "t"
    )
    with pytest.raises(DeliveryFailed):  # not over plain http, not to a look-alike
        sf.token(None, "t", "Salesforce", provider="salesforce", url="http://x.salesforce.com")


async def test_agent_llm_key_env_and_endpoint_are_checked_at_save(api, operator) -> None:
    r = await api.post(
        "/api/v1/agents", json={**AGENT, "llm": {"api_key_env": "VOXLINE_SMTP_PASSWORD"}}
    )
    assert r.status_code == 422 and ["body", "llm", "api_key_env"] in _locs(r)
    for url in (
        "http://169.254.169.254/v1",
        "http://127.0.0.1:8080/v1",
        "http://[64:ff9b::a00:1]/v1",
    ):
        r = await api.post("/api/v1/agents", json={**AGENT, "llm": {"base_url": url}})
        assert r.status_code == 422, url
        assert ["body", "llm", "base_url"] in _locs(r)


def test_a_tenant_llm_endpoint_never_gets_the_operator_key(monkeypatch) -> None:
    monkeypatch.setenv("VOXLINE_LLM_API_KEY", "sk-operator")
    monkeypatch.setenv("SOME_SERVER_SECRET", "s3cret")
    s = ServerSettings(_env_file=None, llm_base_url="https://llm.operator.example/v1")
    tenant = AgentSpec(
        name="a",
        llm={"base_url": "https://llm.tenant.example/v1", "api_key_env": "SOME_SERVER_SECRET"},
    )
    key = tenant.to_agent_config(settings=s).llm.api_key
    assert key not in ("sk-operator", "s3cret", None, "")
    own = AgentSpec(name="b", llm={"base_url": "https://llm.operator.example/v1"})
    assert own.to_agent_config(settings=s).llm.api_key is None  # the engine adds the operator's
    s.tenant_secret_env_allowlist = ["SOME_SERVER_SECRET"]
    assert tenant.to_agent_config(settings=s).llm.api_key == "s3cret"


# -- 5. number ownership --------------------------------------------------------------


async def test_another_organizations_number_cannot_be_registered(api, running) -> None:
    number = _number()
    assert (await api.post("/api/v1/phone-numbers", json={"number": number})).status_code == 201
    async with await other_org_client(running) as b:
        r = await b.post("/api/v1/phone-numbers", json={"number": number})
        assert r.status_code == 409
        # nor can it call out with our number as caller id
        agent = (await b.post("/api/v1/agents", json=AGENT)).json()
        r = await b.post(
            "/api/v1/calls/dispatch",
            json={"agent_id": agent["id"], "to_number": "+15550140000", "from_number": number},
        )
        assert r.status_code == 422 and ["body", "from_number"] in _locs(r)
        r = await b.post(
            "/api/v1/bulk-call",
            json={
                "name": "borrowed caller id",
                "agent_id": agent["id"],
                "from_number": number,
                "contacts": [{"phone_number": "+15550140001"}],
            },
        )
        assert r.status_code == 422 and ["body", "from_number"] in _locs(r), r.text


# -- 7. egress, headers, status page, logs --------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "::127.0.0.1",  # IPv4-compatible
        "::10.0.0.1",
        "::ffff:192.168.1.1",  # IPv4-mapped private
    ],
)
def test_ipv6_forms_of_private_ipv4_are_not_public(address: str) -> None:
    assert not egress.is_public(ipaddress.ip_address(address))
    with pytest.raises(egress.BlockedTarget):
        egress.check_literal(f"http://[{address}]/hook", allow_private=False)


def test_only_ports_80_and_443_unless_the_operator_extends_them() -> None:
    egress.check_literal("https://8.8.8.8/hook", allow_private=False)
    egress.check_literal("http://8.8.8.8:80/hook", allow_private=False)
    with pytest.raises(egress.BlockedTarget, match="port 6379"):
        egress.check_literal("http://8.8.8.8:6379/hook", allow_private=False)
    egress.check_literal("http://8.8.8.8:8443/hook", allow_private=False, ports=[443, 8443])
    assert ServerSettings(
        _env_file=None, egress_allowed_ports="80,443,8443"
    ).egress_allowed_ports == [80, 443, 8443]


async def test_public_webhook_on_another_port_is_refused_at_save(api, operator) -> None:
    action = {"channel": "webhook", "config": {"url": "http://8.8.8.8:2375/containers"}}
    r = await api.post("/api/v1/agents", json={**AGENT, "post_call_actions": [action]})
    assert r.status_code == 422 and "port 2375" in r.text


async def test_html_pages_carry_security_headers(running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as anon:
        for path in ("/dashboard/", f"/test-call/{running.agent_id}"):
            r = await anon.get(path)
            if r.status_code == 404:
                continue  # the test-call page is served only where WebRTC is set up
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"


async def test_security_headers_only_on_html() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=SecurityHeaders(app)), base_url="http://t"
    ) as client:
        r = await client.get("/")
    assert "content-security-policy" not in r.headers


async def test_status_page_shows_no_exception_text(running, caplog) -> None:
    heartbeat = running.app.state.heartbeat

    async def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("postgresql://voxline:hunter2@10.0.0.5/db is down")

    saved = dict(heartbeat._checks)
    heartbeat._checks["api"] = broken
    try:
        with caplog.at_level(logging.ERROR):
            await heartbeat.beat_once()
    finally:
        heartbeat._checks = saved
    async with httpx.AsyncClient(base_url=running.base_url) as anon:
        page = (await anon.get("/api/status-page/heartbeat/all")).text
    assert "hunter2" not in page and "10.0.0.5" not in page
    assert "hunter2" in caplog.text  # the operator still sees it


def test_caller_ids_are_sanitised_for_logs() -> None:
    assert safe_id("CA0123456789abcdef") == "CA0123456789abcdef"
    forged = "x\n2026-01-01 INFO call admin: login ok"
    assert "\n" not in safe_id(forged) and "\n" not in safe_text(forged)
    assert "\x1b" not in safe_text("red\x1b[31m")
    assert len(safe_id("a" * 10_000)) < 100
