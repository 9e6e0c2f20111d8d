"""Transfer and DTMF out per carrier, against the local stub of each carrier's REST API
(tests/gateway/dialects.py), which checks the documented request shape and auth:
Plivo (Transfer API, DTMF), Vonage (transfer to an NCCO, dtmf), Asterisk (ARI variable +
continue, dtmf); and the clear refusals of those without a documented way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from api.server import BackgroundServer
from gateway.asterisk.ari import AriClient, AsteriskActions
from gateway.calls import CallRecord, Direction, InMemoryCallStore
from gateway.carriers import CarrierError
from gateway.plivo.carrier import PlivoApi, PlivoCarrier
from gateway.plivo.routes import dial_xml
from gateway.transfer import CarrierActions, UnsupportedAction
from gateway.vonage.carrier import VonageApi, VonageCarrier
from tests.gateway.dialects import (
    ARI_PASSWORD,
    ARI_USERNAME,
    PLIVO_AUTH_ID,
    PLIVO_AUTH_TOKEN,
    PUBLIC_URL,
    VONAGE_APPLICATION_ID,
    VONAGE_PRIVATE_KEY,
    CarrierStub,
    carrier_stub,
)


class Stubbed:
    def __init__(self, stub: CarrierStub, url: str) -> None:
        self.stub, self.url = stub, url
        self.store = InMemoryCallStore()

    async def call(self, carrier: str, carrier_call_id: str, **fields: object) -> str:
        call_id = "call_" + uuid.uuid4().hex[:16]
        await self.store.create(
            CallRecord(
                id=call_id,
                agent_id="agt",
                direction=Direction.OUTBOUND,
                carrier=carrier,
                carrier_call_id=carrier_call_id,
                **fields,  # type: ignore[arg-type]
            )
        )
        return call_id


@pytest_asyncio.fixture(loop_scope="session")
async def stubbed() -> AsyncIterator[Stubbed]:
    stub = CarrierStub()
    server = BackgroundServer(carrier_stub(stub))
    await server.start()
    try:
        yield Stubbed(stub, server.base_url)
    finally:
        await server.stop()


async def test_plivo_transfers_with_the_transfer_api_and_sends_digits(stubbed: Stubbed) -> None:
    api = PlivoApi(PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN, api_base=stubbed.url)
    actions = CarrierActions(
        stubbed.store, [PlivoCarrier(api, public_url=PUBLIC_URL, store=stubbed.store)]
    )
    call_uuid = str(uuid.uuid4())
    call_id = await stubbed.call("plivo", call_uuid)

    await actions.transfer(call_id, "+15550199000")
    (sent,) = stubbed.stub.of(f"/Call/{call_uuid}/")
    assert sent["legs"] == "aleg" and sent["aleg_method"] == "POST"
    url = urlsplit(sent["aleg_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PUBLIC_URL}/plivo/transfer"
    assert parse_qs(url.query) == {"call_id": [call_id], "to": ["+15550199000"]}

    await actions.send_dtmf(call_id, "12w#")
    assert stubbed.stub.of(f"/Call/{call_uuid}/DTMF/") == [{"digits": "12w#", "leg": "aleg"}]

    # What Plivo fetches from that URL: a <Dial> to the number, or to a SIP user.
    assert "<Dial><Number>15550199000</Number></Dial>" in dial_xml("+15550199000")
    assert "<Dial><User>sip:desk@pbx.example.test</User></Dial>" in dial_xml(
        "sip:desk@pbx.example.test"
    )

    # A call Plivo no longer has: refused, and the refusal says so.
    stubbed.stub.ended.add(call_uuid)
    with pytest.raises(CarrierError, match="404"):
        await actions.send_dtmf(call_id, "1")
    wrong = PlivoApi(PLIVO_AUTH_ID, "not-the-token", api_base=stubbed.url)
    with pytest.raises(CarrierError, match="401"):
        await wrong.send_digits(call_uuid, "1")
    assert stubbed.stub.refused[-1][1] == 401
    await api.aclose()
    await wrong.aclose()


async def test_vonage_transfers_to_a_connect_ncco_and_plays_dtmf(stubbed: Stubbed) -> None:
    api = VonageApi(VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY, api_base=stubbed.url)
    actions = CarrierActions(
        stubbed.store, [VonageCarrier(api, public_url=PUBLIC_URL, store=stubbed.store)]
    )
    call_uuid = "vonage-" + uuid.uuid4().hex
    call_id = await stubbed.call("vonage", call_uuid, from_number="+15550100100")

    await actions.transfer(call_id, "+15550199000")
    await actions.transfer(call_id, "sip:desk@pbx.example.test")
    phone, sip = stubbed.stub.of(f"/v1/calls/{call_uuid}")
    assert phone == {
        "action": "transfer",
        "destination": {
            "type": "ncco",
            "ncco": [
                {
                    "action": "connect",
                    "endpoint": [{"type": "phone", "number": "15550199000"}],
                    "from": "15550100100",  # our number on an outbound call
                }
            ],
        },
    }
    assert sip["destination"]["ncco"][0]["endpoint"] == [
        {"type": "sip", "uri": "sip:desk@pbx.example.test"}
    ]

    # Vonage pauses on p (0.5 s): w is one, W two.
    await actions.send_dtmf(call_id, "1w2W#")
    assert stubbed.stub.of(f"/v1/calls/{call_uuid}/dtmf") == [{"digits": "1p2pp#"}]
    await api.aclose()


async def test_asterisk_transfers_through_the_dialplan_and_plays_dtmf_over_ari(
    stubbed: Stubbed,
) -> None:
    ari = AriClient(stubbed.url, ARI_USERNAME, ARI_PASSWORD)
    actions = CarrierActions(
        stubbed.store, [AsteriskActions(ari, store=stubbed.store, transfer_context="to-humans")]
    )
    # The ARI app named the caller's channel (not the media channel) as ari_channel.
    caller = "1733220000.42"
    call_id = await stubbed.call("asterisk", "media-ws-1", context={"ari_channel": caller})
    stubbed.stub.stasis.add(caller)

    await actions.send_dtmf(call_id, "9w1#")
    await actions.transfer(call_id, "+15550199000")
    sent = [(p, q) for c, p, q in stubbed.stub.commands if c == "asterisk"]
    assert sent == [
        (f"/ari/channels/{caller}/dtmf", {"dtmf": "9w1#"}),
        (
            f"/ari/channels/{caller}/variable",
            {"variable": "VOXLINE_TRANSFER_TO", "value": "+15550199000"},
        ),
        (
            f"/ari/channels/{caller}/continue",
            {"context": "to-humans", "extension": "transfer", "priority": "1"},
        ),
    ]
    # Out of Stasis now (in the dialplan): ARI refuses, and the refusal says why.
    with pytest.raises(CarrierError, match=r"409.*Stasis"):
        await actions.send_dtmf(call_id, "1")
    # A channel id that is no Asterisk id never reaches the URL.
    odd = await stubbed.call("asterisk", "../../asterisk/modules")
    with pytest.raises(CarrierError, match="names no Asterisk channel"):
        await actions.transfer(odd, "+15550199000")
    await ari.aclose()


@pytest.mark.parametrize(
    ("carrier", "action", "why"),
    [
        ("exotel", "transfer", "no API to move a live call"),
        ("exotel", "dtmf", "no message that plays digits"),
        ("twilio", "dtmf", "ends the call's <Connect><Stream>"),
        ("freeswitch", "dtmf", "mod_audio_fork"),
        ("jambonz", "transfer", "listen verb"),
    ],
)
async def test_carriers_without_a_documented_way_are_refused_saying_why(
    stubbed: Stubbed, carrier: str, action: str, why: str
) -> None:
    actions = CarrierActions(stubbed.store, [])
    call_id = await stubbed.call(carrier, "x-1")
    with pytest.raises(UnsupportedAction, match=why):
        if action == "transfer":
            await actions.transfer(call_id, "+15550199000")
        else:
            await actions.send_dtmf(call_id, "1")
