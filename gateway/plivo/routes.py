"""Plivo's endpoints: the answer and hangup webhooks, the media stream, and their gateway.

Both webhooks are form-encoded and signed with ``X-Plivo-Signature-V3`` (HMAC-SHA256
with a nonce, over the URL Plivo called and the POST parameters); an unsigned or
forged one gets 403 and changes nothing.

A transfer (``PlivoCarrier.transfer``) points Plivo at ``/plivo/transfer``, signed the
same way, which answers ``<Dial>`` to the target (``<Number>`` or a SIP ``<User>``).

The answer XML starts a bidirectional stream (``<Stream bidirectional="true"
keepCallAlive="true">``) to ``/plivo/media-stream?token=...``: the token rides in the
URL because ``extraHeaders`` allows only letters and digits. ``keepCallAlive`` keeps
the call on the stream until it ends instead of running on to the next XML element.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response, WebSocket

from gateway.bridge.carrier_call import CarrierStreamGateway
from gateway.bridge.carrier_webhooks import (
    answered_record,
    form_items,
    query_call_id,
    required,
    webhook_error,
)
from gateway.calls import CallStatus
from gateway.carriers import carrier_reason
from gateway.plivo.media_stream import PlivoMediaStream
from gateway.plivo.signature import NONCE_HEADER, SIGNATURE_HEADER, valid_plivo_signature
from gateway.twilio.routes import http_base, websocket_base
from voice_core.dialing import check_transfer_target

log = logging.getLogger(__name__)

MEDIA_STREAM_PATH = "/plivo/media-stream"
# Plivo's CallStatus on the hangup URL -> ours.
HANGUP_STATUS = {
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "failed": CallStatus.FAILED,
    "timeout": CallStatus.NO_ANSWER,
    "no-answer": CallStatus.NO_ANSWER,
    "cancel": CallStatus.CANCELLED,
}
CONTENT_TYPES = {"mulaw": "audio/x-mulaw;rate=8000", "l16": "audio/x-l16;rate=16000"}


@dataclass(kw_only=True)
class PlivoGateway(CarrierStreamGateway):
    transport: ClassVar[str] = "plivo"
    error_tag: ClassVar[str] = "plivo"
    carrier: ClassVar[str] = "plivo"

    def new_dialect(self) -> PlivoMediaStream:
        return PlivoMediaStream()


def stream_xml(stream_url: str, content_type: str) -> str:
    response = ET.Element("Response")
    stream = ET.SubElement(
        response,
        "Stream",
        bidirectional="true",
        keepCallAlive="true",
        audioTrack="inbound",
        contentType=content_type,
    )
    stream.text = stream_url
    return _document(response)


def dial_xml(to: str) -> str:
    """Plivo XML that bridges the call to ``to``: a number (digits, no '+', as Plivo
    writes them) or a SIP URI."""
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial")
    if to.lower().startswith(("sip:", "sips:")):
        ET.SubElement(dial, "User").text = to
    else:
        ET.SubElement(dial, "Number").text = to.lstrip("+")
    return _document(response)


def hangup_xml(reason: str = "rejected") -> str:
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup", reason=reason)
    return _document(response)


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


def build_router(
    gateway: PlivoGateway,
    *,
    auth_token: str,
    public_url: str | None,
    audio: str = "mulaw",
) -> APIRouter:
    router = APIRouter()
    store, agents = gateway.store, gateway.agents
    content_type = CONTENT_TYPES[audio]

    def url_of(request: Request) -> str:
        url = http_base(public_url, request) + request.url.path
        return url + ("?" + request.url.query if request.url.query else "")

    async def signed_form(request: Request) -> dict[str, str]:
        items = await form_items(request)
        signature = request.headers.get(SIGNATURE_HEADER)
        nonce = request.headers.get(NONCE_HEADER)
        if not valid_plivo_signature(auth_token, url_of(request), items, signature, nonce):
            why = "missing" if not signature or not nonce else "does not match"
            log.warning("Plivo webhook %s refused: signature %s", request.url.path, why)
            raise webhook_error(403, SIGNATURE_HEADER, f"signature {why}")
        return dict(items)

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    @router.post("/plivo/answer", tags=["plivo"])
    async def answer(request: Request) -> Response:
        form = await signed_form(request)
        record = await answered_record(
            store,
            agents,
            carrier="plivo",
            carrier_call_id=required(form, "CallUUID"),
            call_id=query_call_id(request),
            from_number=form.get("From", ""),
            to_number=required(form, "To"),
            admission=gateway.admission,
        )
        if record is None:
            return Response(hangup_xml(), media_type="application/xml")
        if record.agent_id is None:
            raise webhook_error(409, "call_id", f"call {record.id} has no agent")
        token = await gateway.mint_token(record.id, record.agent_id)
        url = websocket_base(public_url, request) + MEDIA_STREAM_PATH
        url += "?" + urlencode({"token": token})
        return Response(stream_xml(url, content_type), media_type="application/xml")

    @router.post("/plivo/transfer", tags=["plivo"])
    async def transfer(request: Request) -> Response:
        """Plivo's fetch after our transfer request: where the caller goes now."""
        await signed_form(request)
        to = request.query_params.get("to", "")
        try:
            check_transfer_target(to)
        except ValueError as exc:
            raise webhook_error(400, "to", str(exc)) from exc
        return Response(dial_xml(to), media_type="application/xml")

    @router.post("/plivo/hangup", tags=["plivo"])
    async def hangup(request: Request) -> dict[str, Any]:
        form = await signed_form(request)
        raw = required(form, "CallStatus")
        status = HANGUP_STATUS.get(raw)
        if status is None:
            raise webhook_error(400, "CallStatus", f"unknown status {raw!r}")
        call_id = query_call_id(request)
        record = await store.get(call_id) if call_id else None
        for name in ("CallUUID", "RequestUUID"):
            if record is None and form.get(name):
                record = await store.find_by_carrier_id(form[name])
        if record is None:
            raise webhook_error(404, "CallUUID", "no call for this CallUUID")
        cause = form.get("HangupCauseName") or raw
        applied = await store.set_status(record.id, status, reason=carrier_reason(cause))
        current = await store.get(record.id)
        assert current is not None
        return {"call_id": record.id, "status": current.status.value, "applied": applied}

    return router
