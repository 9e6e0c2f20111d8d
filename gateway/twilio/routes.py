"""HTTP and WebSocket endpoints a carrier calls: media stream, voice webhook, status callback.

The voice webhook and status callback are form-encoded like Twilio's and signed by
Twilio (``X-Twilio-Signature``): a request without a valid signature gets 403 and
changes nothing. Bad or missing fields get a 4xx whose JSON body names the field.
The TwiML answer carries a single-use stream token, the only thing that opens the
media stream.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket

from gateway.calls import TWILIO_STATUS, CallRecord, CallStatus, Direction, new_call_id
from gateway.carriers import carrier_reason
from gateway.config import TransportSettings
from gateway.stream_tokens import valid_id
from gateway.twilio import twiml
from gateway.twilio.phone_call import TOKEN_PARAM, PhoneGateway
from gateway.twilio.signature import SIGNATURE_HEADER, valid_twilio_signature

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


class FormError(ValueError):
    """A webhook body that is not a form we read; ``status`` is the 4xx to answer."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """A form-encoded webhook body as (name, value) pairs, in the order sent (the
    signature covers them all); FormError if it is not UTF-8 or too big."""
    if len(body) > _MAX_FORM_BYTES:
        raise FormError(413, "body", f"form body over {_MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(400, "body", "form body is not UTF-8") from None
    return parse_qsl(text, keep_blank_values=True, strict_parsing=False)


async def _form_items(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _error(
            415, "content-type", f"expected application/x-www-form-urlencoded, got {content_type!r}"
        )
    try:
        return parse_form(await request.body())
    except FormError as exc:
        raise _error(exc.status, exc.field, exc.message) from None


class WebhookSignatures:
    """Checks Twilio's signature on a webhook, over the URL Twilio called: the configured
    public URL (behind a proxy the request's own host is the proxy's view) plus the
    path and query string."""

    def __init__(self, settings: TransportSettings, public_url: str | None) -> None:
        token = settings.twilio_auth_token
        self.auth_token = token.get_secret_value() if token is not None else None
        self.verify = settings.twilio_verify_signatures
        self.public_url = public_url
        if not self.verify:
            log.warning(
                "VOXLINE_TWILIO_VERIFY_SIGNATURES=false: Twilio webhooks are accepted unsigned; "
                "anyone who reaches this server can forge calls (development only)"
            )
        elif not self.auth_token:
            log.warning(
                "VOXLINE_TWILIO_AUTH_TOKEN is not set: Twilio webhooks cannot be verified and "
                "are refused (403)"
            )

    def url_of(self, request: Request) -> str:
        url = http_base(self.public_url, request) + request.url.path
        return url + ("?" + request.url.query if request.url.query else "")

    def check(self, request: Request, items: list[tuple[str, str]]) -> None:
        if not self.verify:
            return
        if not self.auth_token:
            log.warning("Twilio webhook %s refused: no auth token configured", request.url.path)
            raise _error(403, SIGNATURE_HEADER, "signature cannot be verified")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not valid_twilio_signature(self.auth_token, self.url_of(request), items, signature):
            why = "missing" if not signature else "does not match"
            log.warning("Twilio webhook %s refused: signature %s", request.url.path, why)
            raise _error(403, SIGNATURE_HEADER, f"signature {why}")


async def _signed_form(request: Request, signatures: WebhookSignatures) -> dict[str, str]:
    items = await _form_items(request)
    signatures.check(request, items)
    return dict(items)


def _query_call_id(request: Request) -> str | None:
    call_id = request.query_params.get("call_id")
    if call_id is not None and not valid_id(call_id):
        raise _error(400, "call_id", "not a valid call id")
    return call_id


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise _error(400, name, "required")
    return value


def build_router(
    gateway: PhoneGateway, public_url: str | None, settings: TransportSettings
) -> APIRouter:
    router = APIRouter()
    store, agents = gateway.store, gateway.agents
    signatures = WebhookSignatures(settings, public_url)

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    @router.post("/twilio/voice", tags=["twilio"])
    async def voice_webhook(request: Request) -> Response:
        """Answer a call with a media stream to the agent for the called number.

        Outbound calls we placed come back here with ``?call_id=``: their agent is
        already on the record.
        """
        form = await _signed_form(request, signatures)
        call_sid = _required(form, "CallSid")
        to_number = _required(form, "To")
        from_number = form.get("From", "")
        call_id = _query_call_id(request)
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
                if why := await gateway.admission.refuse(agent_id):
                    log.warning("rejecting call %s to %s: %s", call_sid, to_number, why)
                    return Response(twiml.reject("busy"), media_type="application/xml")
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
        token = await gateway.mint_token(record.id, record.agent_id)
        # agent_id and call_id are for the carrier's logs; the stream reads only the token.
        parameters = {"agent_id": record.agent_id, "call_id": record.id, TOKEN_PARAM: token}
        body = twiml.connect_stream(stream_url, parameters)
        return Response(body, media_type="application/xml")

    @router.post("/twilio/status", tags=["twilio"])
    async def status_callback(request: Request) -> dict[str, object]:
        form = await _signed_form(request, signatures)
        call_sid = _required(form, "CallSid")
        raw_status = _required(form, "CallStatus")
        status = TWILIO_STATUS.get(raw_status)
        if status is None:
            raise _error(400, "CallStatus", f"unknown status {raw_status!r}")
        call_id = _query_call_id(request)
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
