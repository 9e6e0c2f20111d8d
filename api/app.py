"""The FastAPI application: engine lifecycle, phone gateway routes, health.

``create_app`` builds everything a call needs once, in the lifespan: the engine
(models load once per process), the call store, the agent directory and the
outbound carrier. They hang off ``app.state.voxline`` for routes and the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from gateway.agents import AgentDirectory, InMemoryAgentDirectory
from gateway.calls import CallStore, InMemoryCallStore
from gateway.carriers import Carrier
from gateway.config import CarrierSettings
from gateway.phone_call import PhoneGateway
from gateway.simulated_carrier import SimulatedCarrier
from gateway.twilio_carrier import TwilioCarrier
from gateway.twilio_routes import MEDIA_STREAM_PATH, build_router, websocket_base
from voice_core.config import Settings
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)


@dataclass
class Voxline:
    """The process's shared services."""

    settings: Settings
    engine: VoiceEngine
    store: CallStore
    agents: AgentDirectory
    phone: PhoneGateway
    carrier: Carrier
    simulated: SimulatedCarrier  # always there: tests, demo and test calls use it

    def set_listening(self, host: str, port: int) -> None:
        """Tell the simulated carrier where our media stream is once the port is bound."""
        if self.settings.public_url:
            self.simulated.media_url = websocket_base(self.settings.public_url) + MEDIA_STREAM_PATH
        else:
            self.simulated.media_url = f"ws://{_url_host(host)}:{port}{MEDIA_STREAM_PATH}"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def create_app(
    settings: Settings | None = None,
    engine: VoiceEngine | None = None,
    *,
    store: CallStore | None = None,
    agents: AgentDirectory | None = None,
    carrier_settings: CarrierSettings | None = None,
) -> FastAPI:
    settings = settings or (engine.settings if engine else Settings())
    engine = engine or VoiceEngine(settings)
    store = store or InMemoryCallStore()
    agents = agents or InMemoryAgentDirectory.with_demo_agent()
    carrier_settings = carrier_settings or CarrierSettings()
    phone = PhoneGateway(
        engine=engine,
        store=store,
        agents=agents,
        recordings_dir=Path(settings.data_dir) / "recordings",
    )
    simulated = SimulatedCarrier(store=store, tts=None)
    carrier: Carrier = simulated
    if carrier_settings.carrier == "twilio":
        carrier = TwilioCarrier(carrier_settings, public_url=settings.public_url or "", store=store)
    services = Voxline(settings, engine, store, agents, phone, carrier, simulated)
    services.set_listening(settings.host, settings.port)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()  # a no-op when the caller already started it
        simulated.tts = engine.tts
        log.info("engine ready: %s", engine.load_times_ms)
        try:
            yield
        finally:
            await phone.hangup_all("server_shutdown")
            await simulated.aclose()
            if carrier is not simulated:
                await carrier.aclose()

    app = FastAPI(title="voxline", version="0.1.0", lifespan=lifespan)
    app.state.voxline = services
    app.include_router(build_router(phone, settings.public_url))

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok" if engine.stt is not None else "starting",
            "active_calls": len(phone.active),
            "carrier": carrier.name,
        }

    return app
