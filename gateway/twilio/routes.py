"""HTTP and WebSocket endpoints a carrier calls: media stream, voice webhook, status callback.

The voice webhook and status callback are form-encoded like Twilio's. Bad or
missing fields get a 4xx whose JSON body names the field.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket

from gateway.calls import TWILIO_STATUS, CallRecord, CallStatus, Direction, new_call_id
from gateway.carriers import carrier_reason
from gateway.twilio import twiml
from gateway.twilio.phone_call import PhoneGateway

log = logging.getLogger(__name__)

MEDIA_STREAM_PATH = "/media-stream"
# Twilio's webhook bodies are a few hundred bytes; anything huge is not a carrier.
_MAX_FORM_BYTES = 64 * 1024


def websocket_base(public_url: str | None, request: Request | None = None) -> str:
    """ws(s)://host of this server as a carrier reaches it."""
    if public_url:
        base = public_url.rstrip("/")
    elif request is not None:
        base = f"{request.url.scheme}://{request.url.netloc}"
    else:
        raise ValueError("public_url is not set and there is no request to take the host from")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://")
    return base


def http_base(public_url: str | None, request: Request | None = None) -> str:
    ws = websocket_base(public_url, request)
    return ws.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def _error(status: int, field: str, message: str) -> HTTPException:
    return HTTPException(status, detail={"field": field, "error": message})


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _error(
            415, "content-type", f"expected application/x-www-form-urlencoded, got {content_type!r}"
        )
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise _error(413, "body", f"form body over {_MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise _error(400, "body", "form body is not UTF-8") from None


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise _error(400, name, "required")
    return value


def build_router(gateway: PhoneGateway, public_url: str | None) -> APIRouter:
    router = APIRouter()
    store, agents = gateway.store, gateway.agents

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    @router.post("/twilio/voice", tags=["twilio"])
    async def voice_webhook(request: Request) -> Response:
        """Answer a call with a media stream to the agent for the called number.

        Outbound calls we placed come back here with ``?call_id=``: their agent is
        already on the record.
        """
        form = await _form(request)
        call_sid = _required(form, "CallSid")
        to_number = _required(form, "To")
        from_number = form.get("From", "")
        call_id = request.query_params.get("call_id")
        if call_id:
            record = await store.get(call_id)
            if record is None:
                raise _error(404, "call_id", f"no call {call_id!r}")
            if record.carrier_call_id != call_sid:
                await store.update(call_id, carrier_call_id=call_sid)
        else:
            record = await store.find_by_carrier_id(call_sid)  # a retried webhook
            if record is None:
                agent_id = await agents.for_number(to_number) or agents.default_agent_id
                if agent_id is None:
                    log.warning("no agent answers %s; rejecting call %s", to_number, call_sid)
                    return Response(twiml.reject(), media_type="application/xml")
                status = TWILIO_STATUS.get(form.get("CallStatus", ""), CallStatus.RINGING)
                record = await store.create(
                    CallRecord(
                        id=new_call_id(),
                        agent_id=agent_id,
                        direction=Direction.INBOUND,
                        from_number=from_number,
                        to_number=to_number,
                        status=status,
                        carrier="twilio",
                        carrier_call_id=call_sid,
                    )
                )
        if record.agent_id is None:
            raise _error(409, "call_id", f"call {record.id} has no agent")
        stream_url = websocket_base(public_url, request) + MEDIA_STREAM_PATH
        body = twiml.connect_stream(stream_url, {"agent_id": record.agent_id, "call_id": record.id})
        return Response(body, media_type="application/xml")

    @router.post("/twilio/status", tags=["twilio"])
    async def status_callback(request: Request) -> dict[str, object]:
        form = await _form(request)
        call_sid = _required(form, "CallSid")
        raw_status = _required(form, "CallStatus")
        status = TWILIO_STATUS.get(raw_status)
        if status is None:
            raise _error(400, "CallStatus", f"unknown status {raw_status!r}")
        call_id = request.query_params.get("call_id")
        record = await store.get(call_id) if call_id else await store.find_by_carrier_id(call_sid)
        if record is None:
            raise _error(404, "CallSid", f"no call for CallSid {call_sid!r}")
        if record.carrier_call_id is None:
            await store.update(record.id, carrier_call_id=call_sid)
        reason = carrier_reason(raw_status)
        applied = await store.set_status(record.id, status, reason=reason)
        current = await store.get(record.id)
        assert current is not None
        return {"call_id": record.id, "status": current.status.value, "applied": applied}

    return router


def outbound_urls(base: str, call_id: str) -> tuple[str, str]:
    """(TwiML URL, status callback URL) for an outbound call we place."""
    query = urlencode({"call_id": call_id})
    return f"{base}/twilio/voice?{query}", f"{base}/twilio/status?{query}"
