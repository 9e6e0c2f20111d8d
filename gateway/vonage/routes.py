"""Vonage's endpoints: the answer URL (an NCCO), the event URL, the media stream, and
their gateway.

Both webhooks must carry a signed JWT (``Authorization: Bearer``, HS256 with the
account's signature secret, ``payload_hash`` of the body); anything else gets 403 and
changes nothing. The answer is an NCCO ``connect`` to our WebSocket with
``content-type: audio/l16;rate=16000`` (the engine's own rate: no resampling) and the
stream token plus Vonage's call ``uuid`` in the endpoint's ``headers``, which Vonage
hands back in the stream's first message.

Vonage sends the answer URL as GET (query parameters) by default, or as POST (JSON)
with ``answer_method: POST``; both are taken.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse

from gateway.bridge.carrier_call import CarrierStreamGateway
from gateway.bridge.carrier_webhooks import (
    answered_record,
    bounded_body,
    query_call_id,
    webhook_error,
)
from gateway.calls import CallStatus
from gateway.carriers import carrier_reason
from gateway.twilio.routes import http_base, websocket_base
from gateway.vonage.media_stream import CALL_UUID_HEADER, TOKEN_HEADER, VonageMediaStream
from gateway.vonage.signature import jwt_problem

log = logging.getLogger(__name__)

MEDIA_STREAM_PATH = "/vonage/media-stream"
CONTENT_TYPE = "audio/l16;rate=16000"
# Vonage's call status (event URL) -> ours; "started"/"answered" are left to the stream.
EVENT_STATUS = {
    "ringing": CallStatus.RINGING,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "timeout": CallStatus.NO_ANSWER,
    "unanswered": CallStatus.NO_ANSWER,
    "rejected": CallStatus.BUSY,
    "failed": CallStatus.FAILED,
    "cancelled": CallStatus.CANCELLED,
}


@dataclass(kw_only=True)
class VonageGateway(CarrierStreamGateway):
    transport: ClassVar[str] = "vonage"
    error_tag: ClassVar[str] = "vonage"
    carrier: ClassVar[str] = "vonage"

    def new_dialect(self) -> VonageMediaStream:
        return VonageMediaStream()


def e164(number: object) -> str:
    """Vonage sends E.164 numbers without the '+' (``447700900000``); our numbers have it."""
    if not isinstance(number, str):
        return ""
    number = number.strip()
    return "+" + number if number.isdigit() else number


def connect_ncco(stream_url: str, headers: dict[str, str], event_url: str) -> list[dict]:
    return [
        {
            "action": "connect",
            "eventUrl": [event_url],
            "endpoint": [
                {
                    "type": "websocket",
                    "uri": stream_url,
                    "content-type": CONTENT_TYPE,
                    "headers": headers,
                }
            ],
        }
    ]


def build_router(
    gateway: VonageGateway, *, signature_secret: str, public_url: str | None
) -> APIRouter:
    router = APIRouter()
    store, agents = gateway.store, gateway.agents

    async def signed(request: Request) -> dict[str, Any]:
        body = await bounded_body(request)
        problem = jwt_problem(signature_secret, request.headers.get("authorization"), body)
        if problem is not None:
            log.warning("Vonage webhook %s refused: signed JWT %s", request.url.path, problem)
            raise webhook_error(403, "Authorization", f"signed JWT {problem}")
        fields: dict[str, Any] = dict(request.query_params)
        if body:
            try:
                posted = json.loads(body)
            except ValueError:
                raise webhook_error(400, "body", "not JSON") from None
            if not isinstance(posted, dict):
                raise webhook_error(400, "body", "not a JSON object")
            fields.update(posted)
        return fields

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    @router.api_route("/vonage/answer", methods=["GET", "POST"], tags=["vonage"])
    async def answer(request: Request) -> JSONResponse:
        fields = await signed(request)
        call_uuid = fields.get("uuid")
        if not isinstance(call_uuid, str) or not call_uuid:
            raise webhook_error(400, "uuid", "required")
        record = await answered_record(
            store,
            agents,
            carrier="vonage",
            carrier_call_id=call_uuid,
            call_id=query_call_id(request),
            from_number=e164(fields.get("from")),
            to_number=e164(fields.get("to")),
            admission=gateway.admission,
        )
        if record is None:
            return JSONResponse(
                [{"action": "talk", "text": "Sorry, this number cannot take calls."}]
            )
        if record.agent_id is None:
            raise webhook_error(409, "call_id", f"call {record.id} has no agent")
        token = await gateway.mint_token(record.id, record.agent_id)
        url = websocket_base(public_url, request) + MEDIA_STREAM_PATH
        event_url = f"{http_base(public_url, request)}/vonage/event?call_id={record.id}"
        headers = {TOKEN_HEADER: token, CALL_UUID_HEADER: call_uuid}
        return JSONResponse(connect_ncco(url, headers, event_url))

    @router.post("/vonage/event", tags=["vonage"])
    async def event(request: Request) -> dict[str, Any]:
        fields = await signed(request)
        status_text = fields.get("status")
        if not isinstance(status_text, str):
            raise webhook_error(400, "status", "required")
        call_id = query_call_id(request)
        record = await store.get(call_id) if call_id else None
        call_uuid = fields.get("uuid")
        if record is None and isinstance(call_uuid, str):
            record = await store.find_by_carrier_id(call_uuid)
        status = EVENT_STATUS.get(status_text)
        # Events of the WebSocket leg carry its own uuid: only the phone leg's count.
        if record is None or status is None or call_uuid != record.carrier_call_id:
            return {"status": status_text, "applied": False}
        applied = await store.set_status(record.id, status, reason=carrier_reason(status_text))
        current = await store.get(record.id)
        assert current is not None
        return {"call_id": record.id, "status": current.status.value, "applied": applied}

    return router
