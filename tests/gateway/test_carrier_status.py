"""Asking a carrier how a call really is (before a campaign dials anyone again): the
Twilio client against a local server that answers as Twilio's Calls resource does, and
the simulated carrier, whose calls live and die with its process."""

from __future__ import annotations

import asyncio
import base64

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse

from api.server import BackgroundServer
from gateway.calls import CallRecord, CallStatus, Direction, InMemoryCallStore
from gateway.carriers import CarrierError
from gateway.simulated.carrier import SimulatedCarrier, SimulatedContact
from tests.gateway.twilio.test_twilio_carrier import ACCOUNT, TOKEN, carrier_and_store, fake_twilio

SID = "CA" + "f0" * 16


async def test_twilio_call_status_is_fetched_from_the_calls_resource() -> None:
    received: list[dict[str, list[str]]] = []
    app = fake_twilio(received)
    states = {SID: "ringing"}
    fetched: list[str] = []

    @app.get("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
    async def fetch_call(account: str, sid: str, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if request.headers.get("authorization") != expected or account != ACCOUNT:
            return JSONResponse({"code": 20003, "message": "Authenticate"}, 401)
        fetched.append(sid)
        if sid not in states:
            return JSONResponse({"code": 20404, "message": "not found", "status": 404}, 404)
        if states[sid] == "boom":
            return JSONResponse({"code": 20500, "message": "Internal error"}, 500)
        return JSONResponse({"sid": sid, "status": states[sid]}, 200)

    server = BackgroundServer(app)
    await server.start()
    carrier, store = await carrier_and_store(server.base_url)
    try:
        assert await carrier.call_status("call_tw_1") is None  # never reached Twilio
        assert fetched == []
        await carrier.place_call(
            to="+15551230000", from_="+15550001111", agent_id="quick", call_id="call_tw_1"
        )
        for said, ours in [
            ("ringing", CallStatus.RINGING),
            ("in-progress", CallStatus.IN_PROGRESS),
            ("completed", CallStatus.COMPLETED),
            ("no-answer", CallStatus.NO_ANSWER),
            ("canceled", CallStatus.CANCELLED),
        ]:
            states[SID] = said
            assert await carrier.call_status("call_tw_1") == ours
        assert fetched == [SID] * 5
        states[SID] = "boom"
        with pytest.raises(CarrierError, match="500"):
            await carrier.call_status("call_tw_1")
        await store.update("call_tw_1", carrier_call_id="CAgone")
        assert await carrier.call_status("call_tw_1") is None  # Twilio has no such call
    finally:
        await carrier.aclose()
        await server.stop()
    down, _ = await carrier_and_store("http://127.0.0.1:9")
    await down._store.update("call_tw_1", carrier_call_id=SID)
    with pytest.raises(CarrierError, match="unreachable"):
        await down.call_status("call_tw_1")
    await down.aclose()


async def test_the_simulated_carrier_reports_its_own_calls_and_knows_no_others() -> None:
    store = InMemoryCallStore()
    await store.create(CallRecord(id="call_sim_1", agent_id="a", direction=Direction.OUTBOUND))
    carrier = SimulatedCarrier(store=store, tts=None)
    try:
        assert await carrier.call_status("call_sim_1") is None  # e.g. placed by a dead process
        await carrier.place_call(
            to="+1555",
            from_="+1555",
            agent_id="a",
            call_id="call_sim_1",
            contact=SimulatedContact(outcome="busy", ring_s=0.3),
        )
        async with asyncio.timeout(5):
            while await carrier.call_status("call_sim_1") != CallStatus.RINGING:
                await asyncio.sleep(0.01)
            while await carrier.call_status("call_sim_1") != CallStatus.BUSY:
                await asyncio.sleep(0.01)
        record = await store.get("call_sim_1")
        assert record is not None and record.status == CallStatus.BUSY
    finally:
        await carrier.aclose()
