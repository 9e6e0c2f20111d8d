"""Sans-I/O security pieces: Twilio's signature, stream tokens, the media budget; and the
webhook settings (no auth token, verification off) on an in-process app."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.agents import InMemoryAgentDirectory
from gateway.calls import InMemoryCallStore
from gateway.config import TransportSettings
from gateway.media_budget import MediaBudget
from gateway.stream_tokens import StreamTokens, TokenError, valid_id
from gateway.twilio.phone_call import PhoneGateway
from gateway.twilio.routes import build_router
from gateway.twilio.signature import twilio_signature, valid_twilio_signature

# The worked example of Twilio's webhook security documentation (two published variants).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def doc_params(caller: str) -> dict[str, str]:
    return {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
    ],
)
def test_signature_matches_twilios_documented_example(caller: str, expected: str) -> None:
    params = doc_params(caller)
    assert twilio_signature("12345", DOC_URL, params.items()) == expected
    # Order of the form does not matter: names are sorted.
    assert valid_twilio_signature("12345", DOC_URL, reversed(params.items()), expected)


def test_signature_refuses_tampering_and_absence() -> None:
    params = doc_params("+14158675309")
    good = twilio_signature("12345", DOC_URL, params.items())
    assert not valid_twilio_signature("12345", DOC_URL, {**params, "Digits": "9"}.items(), good)
    assert not valid_twilio_signature("12345", DOC_URL + "&x=1", params.items(), good)
    assert not valid_twilio_signature("54321", DOC_URL, params.items(), good)
    assert not valid_twilio_signature("12345", DOC_URL, params.items(), None)
    assert not valid_twilio_signature("12345", DOC_URL, params.items(), "")


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_token_names_call_org_agent_and_is_single_use() -> None:
    tokens = StreamTokens(b"k" * 32, ttl_s=30)
    token = tokens.mint(call_id="call_1", org_id="org_a", agent_id="agt_1")
    claims = tokens.redeem(token)
    assert (claims.call_id, claims.org_id, claims.agent_id) == ("call_1", "org_a", "agt_1")
    assert not claims.pass_parameters
    with pytest.raises(TokenError, match="already used"):
        tokens.redeem(token)
    assert tokens.redeem(tokens.mint(call_id="c", org_id="o", agent_id="a", pass_parameters=True))


def test_forged_and_expired_tokens_are_refused() -> None:
    clock = Clock()
    tokens = StreamTokens(b"k" * 32, ttl_s=30, clock=clock)
    other = StreamTokens(b"x" * 32, clock=clock)
    forged = other.mint(call_id="call_1", org_id="org_a", agent_id="agt_1")
    body, signature = tokens.mint(call_id="call_1", org_id="org_a", agent_id="agt_1").split(".")
    theirs = forged.split(".")[0]
    for bad in (forged, f"{theirs}.{signature}", f"{body}.{signature[:-2]}", "", None, "a.b.c"):
        with pytest.raises(TokenError):
            tokens.redeem(bad)
    token = tokens.mint(call_id="call_2", org_id="org_a", agent_id="agt_1")
    clock.t += 30
    with pytest.raises(TokenError, match="expired"):
        tokens.redeem(token)


def test_used_nonces_are_forgotten_once_their_tokens_expire() -> None:
    clock = Clock()
    tokens = StreamTokens(b"k" * 32, ttl_s=10, clock=clock)
    for i in range(5):
        tokens.redeem(tokens.mint(call_id=f"call_{i}", org_id="o", agent_id="a"))
    assert len(tokens._used) == 5
    clock.t += 11
    tokens.redeem(tokens.mint(call_id="call_x", org_id="o", agent_id="a"))
    assert len(tokens._used) == 1


@pytest.mark.parametrize("bad", ["/tmp/x", "../x", "a/b", "", "a" * 81, "x.wav", "é"])
def test_ids_are_validated_by_format(bad: str) -> None:
    assert not valid_id(bad)
    with pytest.raises(ValueError):
        StreamTokens(b"k" * 32).mint(call_id=bad, org_id="o", agent_id="a")


def test_media_budget_allows_real_time_and_a_burst_only() -> None:
    clock = Clock()
    budget = MediaBudget(burst_s=2.0, clock=clock)
    for _ in range(500):  # 10 s in real time
        clock.t += 0.02
        assert budget.take(0.02)
    assert all(budget.take(0.02) for _ in range(100))  # a 2 s burst
    assert not budget.take(0.02)
    fast = MediaBudget(burst_s=2.0, clock=clock)
    verdicts = []
    for _ in range(200):  # ten times real time
        clock.t += 0.002
        verdicts.append(fast.take(0.02))
    assert verdicts.index(False) < 120  # cut after ~2.2 s of audio in 0.22 s


# ------------------------------------------------------------------ webhook settings


def webhook_app(tmp_path: Path, settings: TransportSettings) -> tuple[FastAPI, InMemoryCallStore]:
    store = InMemoryCallStore()
    gateway = PhoneGateway(
        engine=None,  # type: ignore[arg-type]  # webhooks never reach the engine
        store=store,
        agents=InMemoryAgentDirectory.with_demo_agent(),
        recordings_dir=tmp_path,
    )
    app = FastAPI()
    app.include_router(build_router(gateway, "https://voice.example.test", settings))
    return app, store


FORM = {"CallSid": "CA1", "To": "+15550100100", "From": "+15557654321"}


async def test_no_auth_token_refuses_webhooks_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.twilio.routes")
    app, store = webhook_app(tmp_path, TransportSettings(_env_file=None))
    assert "VOXLINE_TWILIO_AUTH_TOKEN is not set" in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/twilio/voice", data=FORM)
    assert response.status_code == 403
    assert "no auth token configured" in caplog.text
    assert await store.list() == []


async def test_verification_off_is_explicit_and_warned_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.twilio.routes")
    settings = TransportSettings(_env_file=None, twilio_verify_signatures=False)
    app, store = webhook_app(tmp_path, settings)
    assert "VOXLINE_TWILIO_VERIFY_SIGNATURES=false" in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/twilio/voice", data=FORM)
    assert response.status_code == 200 and "token" in response.text
    assert len(await store.list()) == 1


async def test_signature_is_over_the_public_url_not_the_proxys_host(tmp_path: Path) -> None:
    settings = TransportSettings(_env_file=None, twilio_auth_token="secret-token")
    app, store = webhook_app(tmp_path, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as http:
        # Signed for the URL the proxy's host would give: refused.
        wrong = twilio_signature("secret-token", "http://internal:8000/twilio/voice", FORM.items())
        refused = await http.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": wrong})
        right = twilio_signature(
            "secret-token", "https://voice.example.test/twilio/voice", FORM.items()
        )
        answered = await http.post(
            "/twilio/voice", data=FORM, headers={"X-Twilio-Signature": right}
        )
    assert refused.status_code == 403 and answered.status_code == 200
    assert len(await store.list()) == 1
