"""TwilioCarrier against a local server that checks requests the way Twilio's API does."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from api.server import BackgroundServer
from gateway.calls import CallRecord, CallStatus, Direction, InMemoryCallStore
from gateway.carriers import CarrierError
from gateway.config import TransportSettings
from gateway.twilio.carrier import TwilioCarrier

ACCOUNT = "AC" + "a1" * 16
TOKEN = "s3cr3t-token"
PUBLIC = "https://voice.example.test"


def fake_twilio(received: list[dict[str, list[str]]], ended: set[str] | None = None) -> FastAPI:
    """``ended``: call sids that are over (a redirect of one is refused, as Twilio does)."""
    app = FastAPI()
    ended = ended if ended is not None else set()

    def error(status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(
            {"code": code, "message": message, "more_info": "", "status": status}, status
        )

    @app.post("/2010-04-01/Accounts/{account}/Calls.json")
    async def create_call(account: str, request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if auth != expected or account != ACCOUNT:
            return error(401, 20003, "Authenticate")
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return error(400, 20001, "form body required")
        form = parse_qs((await request.body()).decode())
        received.append(form)
        if "To" not in form:
            return error(400, 21201, "No 'To' number is specified")
        for name in ("From", "Url", "StatusCallback"):
            if len(form.get(name, [])) != 1:
                return error(400, 21205, f"{name} is required")
        if not form["To"][0].startswith("+"):
            return error(400, 21211, f"Invalid 'To' Phone Number: {form['To'][0]}")
        return JSONResponse(
            {
                "sid": "CA" + "f0" * 16,
                "account_sid": ACCOUNT,
                "to": form["To"][0],
                "from": form["From"][0],
                "status": "queued",
                "api_version": "2010-04-01",
            },
            201,
        )

    @app.post("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
    async def update_call(account: str, sid: str, request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if auth != expected or account != ACCOUNT:
            return error(401, 20003, "Authenticate")
        form = parse_qs((await request.body()).decode())
        received.append({"sid": [sid], **form})
        if sid != "CA" + "f0" * 16:
            return error(404, 20404, f"The requested resource {sid} was not found")
        if "Twiml" in form:  # redirect a live call to new instructions
            if sid in ended:
                return error(400, 21220, "Call is not in-progress. Cannot redirect.")
            try:
                root = ET.fromstring(form["Twiml"][0])
            except ET.ParseError:
                return error(400, 12100, "Document parse failure")
            if root.tag != "Response":
                return error(400, 12100, "Document parse failure")
            return JSONResponse({"sid": sid, "status": "in-progress"}, 200)
        return JSONResponse({"sid": sid, "status": form["Status"][0]}, 200)

    return app


@pytest_asyncio.fixture(loop_scope="session")
async def twilio_api() -> AsyncIterator[tuple[str, list[dict[str, list[str]]]]]:
    received: list[dict[str, list[str]]] = []
    server = BackgroundServer(fake_twilio(received))
    await server.start()
    yield server.base_url, received
    await server.stop()


async def carrier_and_store(
    base: str, token: str = TOKEN
) -> tuple[TwilioCarrier, InMemoryCallStore]:
    store = InMemoryCallStore()
    await store.create(CallRecord(id="call_tw_1", agent_id="quick", direction=Direction.OUTBOUND))
    settings = TransportSettings(
        carrier="twilio",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=SecretStr(token),
        twilio_api_base=base,
    )
    return TwilioCarrier(settings, public_url=PUBLIC, store=store), store


async def test_places_a_call_with_the_documented_form_and_auth(twilio_api) -> None:
    base, received = twilio_api
    carrier, store = await carrier_and_store(base)
    try:
        sid = await carrier.place_call(
            to="+15551230000", from_="+15550001111", agent_id="quick", call_id="call_tw_1"
        )
    finally:
        await carrier.aclose()
    assert sid == "CA" + "f0" * 16
    [form] = received
    assert form["To"] == ["+15551230000"] and form["From"] == ["+15550001111"]
    twiml_url = urlparse(form["Url"][0])
    assert (twiml_url.scheme, twiml_url.netloc, twiml_url.path) == (
        "https",
        "voice.example.test",
        "/twilio/voice",
    )
    assert parse_qs(twiml_url.query) == {"call_id": ["call_tw_1"]}
    assert form["StatusCallback"] == [f"{PUBLIC}/twilio/status?call_id=call_tw_1"]
    assert form["StatusCallbackMethod"] == ["POST"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    record = await store.get("call_tw_1")
    assert record is not None
    assert record.carrier_call_id == sid and record.status == CallStatus.QUEUED


async def test_cancel_updates_the_placed_call_to_canceled(twilio_api) -> None:
    base, received = twilio_api
    carrier, store = await carrier_and_store(base)
    try:
        assert not await carrier.cancel("call_tw_1")  # never placed: nothing to cancel
        sid = await carrier.place_call(
            to="+15551230000", from_="+15550001111", agent_id="quick", call_id="call_tw_1"
        )
        assert await carrier.cancel("call_tw_1")
        assert received[-1] == {"sid": [sid], "Status": ["canceled"]}
        # Twilio no longer knows the call (or refuses): logged, not raised.
        await store.update("call_tw_1", carrier_call_id="CAgone")
        assert not await carrier.cancel("call_tw_1")
    finally:
        await carrier.aclose()


async def test_wrong_credentials_give_a_clear_error(twilio_api) -> None:
    base, _ = twilio_api
    carrier, _ = await carrier_and_store(base, token="wrong")
    with pytest.raises(CarrierError, match=r"401, code 20003\): Authenticate"):
        await carrier.place_call(
            to="+15551230000", from_="+1555", agent_id="q", call_id="call_tw_1"
        )
    await carrier.aclose()


async def test_a_rejected_number_gives_twilios_reason(twilio_api) -> None:
    base, _ = twilio_api
    carrier, store = await carrier_and_store(base)
    with pytest.raises(CarrierError, match=r"400, code 21211\): Invalid 'To' Phone Number"):
        await carrier.place_call(to="12345", from_="+1555", agent_id="q", call_id="call_tw_1")
    await carrier.aclose()
    record = await store.get("call_tw_1")
    assert record is not None and record.carrier_call_id is None


async def test_an_unreachable_api_is_a_carrier_error() -> None:
    carrier, _ = await carrier_and_store("http://127.0.0.1:9")
    with pytest.raises(CarrierError, match="unreachable"):
        await carrier.place_call(to="+1555", from_="+1555", agent_id="q", call_id="call_tw_1")
    await carrier.aclose()


def test_missing_credentials_or_public_url_are_refused_up_front() -> None:
    store = InMemoryCallStore()
    with pytest.raises(CarrierError, match="ACCOUNT_SID"):
        TwilioCarrier(TransportSettings(carrier="twilio"), public_url=PUBLIC, store=store)
    settings = TransportSettings(twilio_account_sid=ACCOUNT, twilio_auth_token=SecretStr(TOKEN))
    with pytest.raises(CarrierError, match="PUBLIC_URL"):
        TwilioCarrier(settings, public_url="", store=store)


async def test_transfer_redirects_the_live_call_to_a_dial(twilio_api) -> None:
    base, received = twilio_api
    carrier, _ = await carrier_and_store(base)
    try:
        sid = await carrier.place_call(
            to="+15551230000", from_="+15550001111", agent_id="quick", call_id="call_tw_1"
        )
        await carrier.transfer("call_tw_1", "+15550199000")
        dial = ET.fromstring(received[-1]["Twiml"][0]).find("Dial")
        assert received[-1]["sid"] == [sid] and dial is not None
        assert [(n.tag, n.text) for n in dial] == [("Number", "+15550199000")]
        await carrier.transfer("call_tw_1", "sip:desk@pbx.example.test")
        dial = ET.fromstring(received[-1]["Twiml"][0]).find("Dial")
        assert dial is not None
        assert [(n.tag, n.text) for n in dial] == [("Sip", "sip:desk@pbx.example.test")]
    finally:
        await carrier.aclose()


async def test_a_refused_transfer_gives_twilios_reason() -> None:
    received: list[dict[str, list[str]]] = []
    server = BackgroundServer(fake_twilio(received, ended={"CA" + "f0" * 16}))
    await server.start()
    carrier, store = await carrier_and_store(server.base_url)
    try:
        with pytest.raises(CarrierError, match="no Twilio call sid"):
            await carrier.transfer("call_tw_1", "+15550199000")  # never reached Twilio
        await store.update("call_tw_1", carrier_call_id="CA" + "f0" * 16)
        with pytest.raises(CarrierError, match=r"code 21220\): Call is not in-progress"):
            await carrier.transfer("call_tw_1", "+15550199000")
    finally:
        await carrier.aclose()
        await server.stop()
