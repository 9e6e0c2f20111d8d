"""Exotel's endpoints: the Voicebot applet's dynamic URL, the media stream, and their
gateway.

Exotel signs nothing, so the applet's dynamic-URL endpoint (``GET /exotel/voicebot``,
which Exotel calls with ``CallSid``, ``CallFrom``, ``CallTo``) requires HTTP Basic
credentials (put them in the applet's URL, ``https://user:password@host/...``); an
unauthenticated request gets 401 and changes nothing. It answers ``{"url": ...}``: the
stream's WebSocket URL with a fresh single-use stream token in the query, which Exotel
hands back in ``start.custom_parameters`` (and which the route also reads from the
upgrade's query string).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request, WebSocket

from gateway.asterisk.basic_auth import basic_auth_ok
from gateway.bridge.carrier_call import CarrierStreamGateway
from gateway.bridge.carrier_webhooks import answered_record, webhook_error
from gateway.exotel.media_stream import ExotelMediaStream
from gateway.twilio.routes import websocket_base

log = logging.getLogger(__name__)

MEDIA_STREAM_PATH = "/exotel/media-stream"
VOICEBOT_PATH = "/exotel/voicebot"


@dataclass(kw_only=True)
class ExotelGateway(CarrierStreamGateway):
    transport: ClassVar[str] = "exotel"
    error_tag: ClassVar[str] = "exotel"
    carrier: ClassVar[str] = "exotel"

    def new_dialect(self) -> ExotelMediaStream:
        return ExotelMediaStream()


def build_router(
    gateway: ExotelGateway, *, username: str, password: str, public_url: str | None
) -> APIRouter:
    router = APIRouter()

    @router.websocket(MEDIA_STREAM_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await gateway.handle(websocket)

    @router.get(VOICEBOT_PATH, tags=["exotel"])
    async def voicebot(request: Request) -> dict[str, Any]:
        if not basic_auth_ok(request.headers.get("authorization"), username, password):
            log.warning(
                "Exotel voicebot URL request from %s refused: bad credentials", request.client
            )
            raise webhook_error(401, "Authorization", "HTTP Basic credentials required")
        call_sid = request.query_params.get("CallSid", "").strip()
        if not call_sid:
            raise webhook_error(400, "CallSid", "required")
        record = await answered_record(
            gateway.store,
            gateway.agents,
            carrier="exotel",
            carrier_call_id=call_sid,
            call_id=None,
            from_number=request.query_params.get("CallFrom", ""),
            to_number=request.query_params.get("CallTo", ""),
            admission=gateway.admission,
        )
        if record is None or record.agent_id is None:
            raise webhook_error(404, "CallTo", "no agent answers this number")
        token = await gateway.mint_token(record.id, record.agent_id)
        url = websocket_base(public_url, request) + MEDIA_STREAM_PATH
        return {"url": f"{url}?{urlencode({'token': token})}"}

    return router
