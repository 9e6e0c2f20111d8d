"""Wires browser and WhatsApp calls into the app: gateway, tokens, routes, shutdown.

Kept out of ``api/app.py`` so the app factory only needs three lines for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.realtime import webrtc_routes, whatsapp_routes
from api.settings import ServerSettings
from gateway.agents import AgentDirectory
from gateway.calls import CallStore
from gateway.webrtc.call import WebRtcGateway
from gateway.webrtc.ice import use_loopback_candidates
from gateway.webrtc.tokens import SessionTokens
from gateway.whatsapp.calls import WhatsAppCalls
from gateway.whatsapp.carrier import WhatsAppCarrier
from gateway.whatsapp.graph import GraphClient
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)


@dataclass
class Realtime:
    webrtc: WebRtcGateway
    tokens: SessionTokens
    whatsapp: WhatsAppCalls
    whatsapp_carrier: WhatsAppCarrier

    def install(self, app: FastAPI, services: Any) -> None:
        app.state.webrtc = self.webrtc
        app.state.session_tokens = self.tokens
        app.state.whatsapp = self.whatsapp
        app.state.whatsapp_carrier = self.whatsapp_carrier
        services.webrtc = self.webrtc  # the heartbeat's WebRTC monitor reads it
        services.whatsapp_carrier = self.whatsapp_carrier  # dispatch with channel "whatsapp"
        app.include_router(webrtc_routes.router)
        app.include_router(whatsapp_routes.router)

    async def aclose(self) -> None:
        await self.whatsapp_carrier.aclose()  # unanswered calls: terminate, record failed
        await self.whatsapp.aclose()
        await self.webrtc.close_all("server_shutdown")


def build_realtime(
    settings: ServerSettings, engine: VoiceEngine, store: CallStore, agents: AgentDirectory
) -> Realtime:
    if settings.webrtc_loopback_candidates:
        use_loopback_candidates(True)
    webrtc = WebRtcGateway(
        engine=engine,
        store=store,
        recordings_dir=Path(settings.data_dir) / "recordings",
        ice_servers=list(settings.ice_servers),
        ice_username=settings.ice_username,
        ice_credential=settings.ice_credential,
        gather_timeout_s=settings.webrtc_gather_timeout_s,
        connect_timeout_s=settings.webrtc_connect_timeout_s,
    )
    graph = None
    if settings.whatsapp_phone_number_id and settings.whatsapp_access_token:
        graph = GraphClient(
            base_url=settings.whatsapp_graph_base_url,
            version=settings.whatsapp_graph_version,
            phone_number_id=settings.whatsapp_phone_number_id,
            access_token=settings.whatsapp_access_token,
        )
    whatsapp = WhatsAppCalls(webrtc=webrtc, store=store, agents=agents, graph=graph)
    whatsapp.outbound = WhatsAppCarrier(whatsapp, ring_timeout_s=settings.whatsapp_ring_timeout_s)
    return Realtime(
        webrtc, SessionTokens(settings.webrtc_session_ttl_s), whatsapp, whatsapp.outbound
    )
