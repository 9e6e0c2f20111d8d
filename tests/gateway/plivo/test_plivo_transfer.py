"""The XML Plivo fetches after our transfer request (``/plivo/transfer``): signed like
every Plivo webhook, it answers a <Dial> to the target the signed URL names."""

from __future__ import annotations

from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from tests.gateway.dialects import DialectServer, dialect_server  # noqa: F401  (the fixture)
from tests.gateway.plivo.test_plivo_calls import post_signed

FORM = {"CallUUID": "8f6f5a7e-0000-4000-8000-000000000001", "CallStatus": "in-progress"}


async def test_the_transfer_url_dials_the_target_only_when_signed(
    dialect_server: DialectServer,  # noqa: F811
) -> None:
    path = "/plivo/transfer?" + urlencode({"call_id": "call_x", "to": "+15550199000"})
    response = await post_signed(dialect_server, path, FORM)
    assert response.status_code == 200 and response.headers["content-type"] == "application/xml"
    dial = ET.fromstring(response.text).find("Dial")
    assert dial is not None and dial.findtext("Number") == "15550199000"

    sip = "/plivo/transfer?" + urlencode({"call_id": "call_x", "to": "sip:desk@pbx.example.test"})
    dial = ET.fromstring((await post_signed(dialect_server, sip, FORM)).text).find("Dial")
    assert dial is not None and dial.findtext("User") == "sip:desk@pbx.example.test"

    assert (await post_signed(dialect_server, path, FORM, sign=False)).status_code == 403
    bad = "/plivo/transfer?" + urlencode({"call_id": "call_x", "to": "+1 555 <Hangup/>"})
    refused = await post_signed(dialect_server, bad, FORM)
    assert refused.status_code == 400 and "to" in refused.text
