"""Wires browser and WhatsApp calls into the app: gateway, tokens, routes, shutdown.

Kept out of ``api/app.py`` so the app factory only needs three lines for it. The
WebRTC gateway and the WhatsApp carrier also go into ``api.services.Voxline``, which
``api.app`` builds after this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.realtime import webrtc_routes, whatsapp_routes
from api.realtime.session_tokens import SqlSessionTokens
from api.settings import ServerSettings
from gateway.agents import AgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import CallStore
from gateway.webrtc.call import WebRtcGateway
from gateway.webrtc.ice import use_loopback_candidates
from gateway.whatsapp.graph import GraphClient
from gateway.whatsapp.wiring import WhatsApp, build_whatsapp
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)


@dataclass
class Realtime:
    webrtc: WebRtcGateway
    tokens: SqlSessionTokens  # in the database: minted on one process, spent on any
    whatsapp: WhatsApp

    def install(self, app: FastAPI) -> None:
        app.state.webrtc = self.webrtc
        app.state.session_tokens = self.tokens
        app.state.whatsapp = self.whatsapp.webhooks  # the webhook routes hand it events
        app.state.whatsapp_carrier = self.whatsapp.carrier
        app.include_router(webrtc_routes.router)
        app.include_router(whatsapp_routes.router)

    async def aclose(self) -> None:
        await self.whatsapp.aclose()  # unanswered calls: terminate, record failed
        await self.webrtc.close_all("server_shutdown")


def build_realtime(
    settings: ServerSettings,
    engine: VoiceEngine,
    store: CallStore,
    agents: AgentDirectory,
    calls: CallRegistry,
    *,
    sessions: async_sessionmaker,
) -> Realtime:
    transport = settings.transport
    if transport.webrtc_loopback_candidates:
        use_loopback_candidates(True)
    webrtc = WebRtcGateway(
        engine=engine,
        store=store,
        recordings_dir=Path(settings.data_dir) / "recordings",
        calls=calls,
        ice_servers=list(transport.ice_servers),
        ice_username=transport.ice_username,
        ice_credential=transport.ice_credential,
        gather_timeout_s=transport.webrtc_gather_timeout_s,
        connect_timeout_s=transport.webrtc_connect_timeout_s,
    )
    graph = None
    if transport.whatsapp_phone_number_id and transport.whatsapp_access_token:
        graph = GraphClient(
            base_url=transport.whatsapp_graph_base_url,
            version=transport.whatsapp_graph_version,
            phone_number_id=transport.whatsapp_phone_number_id,
            access_token=transport.whatsapp_access_token,
        )
    whatsapp = build_whatsapp(
        webrtc=webrtc,
        store=store,
        agents=agents,
        graph=graph,
        ring_timeout_s=transport.whatsapp_ring_timeout_s,
    )
    tokens = SqlSessionTokens(sessions, transport.webrtc_session_ttl_s)
    return Realtime(webrtc, tokens, whatsapp)
