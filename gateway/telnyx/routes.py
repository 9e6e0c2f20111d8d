"""Telnyx's endpoints: the Call Control webhook and the media stream, and the gateway
they share.

``POST /telnyx/call-control`` takes Telnyx's JSON webhooks, each signed with Ed25519
(``telnyx-signature-ed25519`` over ``telnyx-timestamp|body``); an unsigned, forged or
stale one gets 403 and changes nothing. Call Control answers nothing in the response
body: a call is driven by REST commands sent while handling its webhooks:

- ``call.initiated`` of an incoming call: answered with a bidirectional RTP stream to
  ``/telnyx/media-stream`` carrying a fresh stream token (rejected when no agent
  answers the number);
- ``call.answered`` of a call we dialed: ``streaming_start`` with its token, minted now
  (at dial time the callee might ring longer than a token lives);
- ``call.hangup``: the call's final status from ``hangup_cause``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request, WebSocket
from starlette.websockets import WebSocket as StarletteWebSocket

from gateway.bridge.carrier_call import CarrierStreamGateway
from gateway.bridge.carrier_webhooks import answered_record, bounded_body, webhook_error
from gateway.calls import CallRecord, CallStatus, Direction
from gateway.carriers import CarrierError, carrier_reason
from gateway.telnyx.carrier import (
    TelnyxCallControl,
    call_id_from_state,
    client_state,
    stream_params,
)
from gateway.telnyx.media_stream import AUTH_TOKEN_FIELD, TelnyxMediaStream
from gateway.telnyx.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_problem
from gateway.telnyx.signature import public_key as load_public_key
from gateway.twilio.routes import websocket_base

log = logging.getLogger(__name__)

MEDIA_STREAM_PATH = "/telnyx/media-stream"
WEBHOOK_PATH = "/telnyx/call-control"

# hangup_cause -> the status of a call that ends that way. Any other cause: completed
# if the call was answered, failed if it never was.
HANGUP_STATUS = {
    "normal_clearing": CallStatus.COMPLETED,
    "user_busy": CallStatus.BUSY,
    "call_rejected": CallStatus.BUSY,
    "timeout": CallStatus.NO_ANSWER,
    "no_answer": CallStatus.NO_ANSWER,
    "originator_cancel": CallStatus.CANCELLED,
}


@dataclass(kw_only=True)
class TelnyxGateway(CarrierStreamGateway):
    transport: ClassVar[str] = "telnyx"
    error_tag: ClassVar[str] = "telnyx"
    carrier: ClassVar[str] = "telnyx"

    def new_dialect(self) -> TelnyxMediaStream:
        return TelnyxMediaStream()

    def upgrade_token(self, websocket: StarletteWebSocket) -> str | None:
        # Telnyx sends stream_auth_token as an upgrade header as well as in ``connected``.
        return websocket.headers.get(AUTH_TOKEN_FIELD)


@dataclass
class TelnyxStreamSettings:
    public_key: str  # base64 Ed25519, from the portal
    codec: str = "PCMU"  # or "L16"
    sample_rate: int = 8000  # 16000 with L16


def build_router(
    gateway: TelnyxGateway,
    api: TelnyxCallControl,
    stream: TelnyxStreamSettings,
    public_url: str | None,
) -> APIRouter:
    router = APIRouter()
    key = load_public_key(stream.public_key)
    store, agents = gateway.store, gateway.agents

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    async def start_stream(request: Request, record: CallRecord, action: str) -> None:
        assert record.agent_id is not None and record.carrier_call_id is not None
        token = await gateway.mint_token(record.id, record.agent_id)
        url = websocket_base(public_url, request) + MEDIA_STREAM_PATH
        body = stream_params(url, token, codec=stream.codec, sample_rate=stream.sample_rate)
        body["client_state"] = client_state(record.id)
        await api.command(record.carrier_call_id, action, body)

    @router.post(WEBHOOK_PATH, tags=["telnyx"])
    async def call_control(request: Request) -> dict[str, Any]:
        body = await bounded_body(request)
        problem = signature_problem(
            key, body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
        )
        if problem is not None:
            log.warning("Telnyx webhook refused: signature %s", problem)
            raise webhook_error(403, SIGNATURE_HEADER, f"signature {problem}")
        data, payload = _event(body)
        event_type = data["event_type"]
        control_id = payload.get("call_control_id")
        if not isinstance(control_id, str) or not control_id:
            raise webhook_error(400, "data.payload.call_control_id", "required")
        call_id = call_id_from_state(payload.get("client_state"))
        try:
            if event_type == "call.initiated":
                return await on_initiated(request, payload, control_id, call_id)
            if event_type == "call.answered":
                return await on_answered(request, control_id, call_id)
            if event_type == "call.hangup":
                return await on_hangup(payload, control_id, call_id)
        except CarrierError as exc:
            log.warning("Telnyx call %s: %s", control_id, exc)
            raise webhook_error(502, "telnyx", str(exc)) from exc
        if event_type == "streaming.failed":
            log.warning(
                "Telnyx call %s: stream failed: %s", control_id, payload.get("failure_reason")
            )
        return {"event_type": event_type, "action": "none"}

    async def on_initiated(
        request: Request, payload: dict[str, Any], control_id: str, call_id: str | None
    ) -> dict[str, Any]:
        if payload.get("direction") != "incoming":
            record = await _record(call_id, control_id)
            if record is not None:
                await store.set_status(record.id, CallStatus.RINGING)
            return {"event_type": "call.initiated", "action": "none"}
        record = await answered_record(
            store,
            agents,
            carrier="telnyx",
            carrier_call_id=control_id,
            call_id=None,
            from_number=_text(payload.get("from")),
            to_number=_text(payload.get("to")),
            admission=gateway.admission,
        )
        if record is None:
            await api.command(control_id, "reject", {"cause": "CALL_REJECTED"})
            return {"event_type": "call.initiated", "action": "reject"}
        if record.agent_id is None:
            raise webhook_error(409, "call_id", f"call {record.id} has no agent")
        await start_stream(request, record, "answer")
        return {"event_type": "call.initiated", "action": "answer", "call_id": record.id}

    async def on_answered(request: Request, control_id: str, call_id: str | None) -> dict[str, Any]:
        record = await _record(call_id, control_id)
        if record is None or record.direction is not Direction.OUTBOUND:
            # An inbound call's stream was asked for in the answer itself.
            return {"event_type": "call.answered", "action": "none"}
        if record.status.final:
            await api.hang_up(control_id)  # we gave up on it while it rang
            return {"event_type": "call.answered", "action": "hangup", "call_id": record.id}
        if record.carrier_call_id != control_id:
            record = await store.update(record.id, carrier_call_id=control_id)
        await start_stream(request, record, "streaming_start")
        return {"event_type": "call.answered", "action": "streaming_start", "call_id": record.id}

    async def on_hangup(
        payload: dict[str, Any], control_id: str, call_id: str | None
    ) -> dict[str, Any]:
        record = await _record(call_id, control_id)
        if record is None:
            raise webhook_error(404, "data.payload.call_control_id", f"no call {control_id!r}")
        cause = _text(payload.get("hangup_cause")) or "unspecified"
        status = HANGUP_STATUS.get(cause)
        if status is None:
            status = CallStatus.COMPLETED if record.answered_at else CallStatus.FAILED
        applied = await store.set_status(record.id, status, reason=carrier_reason(cause))
        current = await store.get(record.id)
        assert current is not None
        return {
            "event_type": "call.hangup",
            "call_id": record.id,
            "status": current.status.value,
            "applied": applied,
        }

    async def _record(call_id: str | None, control_id: str) -> CallRecord | None:
        if call_id:
            record = await store.get(call_id)
            if record is not None:
                return record
        return await store.find_by_carrier_id(control_id)

    return router


def _event(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, data.payload)`` of a Call Control webhook, or a 400 naming the field."""
    try:
        event = json.loads(body)
    except ValueError:
        raise webhook_error(400, "body", "not JSON") from None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        raise webhook_error(400, "data", "required object")
    if not isinstance(data.get("event_type"), str):
        raise webhook_error(400, "data.event_type", "required")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise webhook_error(400, "data.payload", "required object")
    return data, payload


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
