"""The FastAPI application: engine lifecycle, database, control plane, phone gateway.

``create_app`` builds everything a call needs once, in the lifespan: the engine
(models load once per process), the database (migrated to the latest schema),
the call store, the agent directory and the outbound carrier. They hang off
``app.state.voxline`` for routes and the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api import heartbeat
from api.agents import phone_numbers as number_routes
from api.agents import routes as agent_routes
from api.agents.directory import SqlAgentDirectory
from api.bootstrap import Bootstrap, ensure_defaults
from api.calls import routes as call_routes
from api.calls.commands import CommandBus
from api.calls.store import SqlCallStore
from api.campaigns import routes as bulk_call_routes
from api.campaigns.dispatcher import CampaignDispatcher, on_call_status
from api.db.engine import create_engine, migrate, session_factory
from api.lifecycle import Lifecycle
from api.live import dashboard as dashboard_routes
from api.live import routes as live_routes
from api.live.feed import LiveHub, redis_url_from
from api.postcall.service import PostCall, http_base
from api.realtime.setup import build_realtime
from api.settings import ServerSettings
from gateway.agents import AgentDirectory
from gateway.calls import CallRecord, CallStatus, CallStore
from gateway.carriers import Carrier, CarrierError
from gateway.config import CarrierSettings
from gateway.simulated.carrier import SimulatedCarrier, SimulatedContact
from gateway.twilio.carrier import TwilioCarrier
from gateway.twilio.phone_call import PhoneGateway
from gateway.twilio.routes import MEDIA_STREAM_PATH, build_router, websocket_base
from gateway.whatsapp.calls import CARRIER as WHATSAPP
from voice_core.config import LLMConfig, Settings
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
    settings_default_from: str | None = None
    default_llm_config: LLMConfig = field(default_factory=LLMConfig)
    # Business-initiated WhatsApp calls (records with carrier "whatsapp"); set by
    # api.webrtc_setup.
    whatsapp_carrier: Carrier | None = None
    commands: CommandBus | None = None  # with Redis: reach calls other processes carry

    def set_listening(self, host: str, port: int) -> None:
        """Tell the simulated carrier where our media stream is once the port is bound."""
        if self.settings.public_url:
            self.simulated.media_url = websocket_base(self.settings.public_url) + MEDIA_STREAM_PATH
        else:
            self.simulated.media_url = f"ws://{_url_host(host)}:{port}{MEDIA_STREAM_PATH}"

    async def hang_up_local(self, call_id: str, reason: str) -> bool:
        """Hang up a call this process carries; False if it carries no such call."""
        live = self.phone.active.get(call_id)
        if live is not None:
            await live.hangup(reason)
            return True
        webrtc = getattr(self, "webrtc", None)  # browser and WhatsApp calls
        return bool(webrtc is not None and await webrtc.hangup(call_id, reason))

    async def on_command(self, command: dict[str, Any]) -> None:
        if command.get("type") == "hangup" and command.get("call_id"):
            await self.hang_up_local(str(command["call_id"]), str(command.get("reason", "")))

    async def place_call(self, record: CallRecord) -> str:
        """Dial an outbound call whose record already exists (a record whose carrier is
        "whatsapp", from a dispatch with channel "whatsapp", is a WhatsApp call)."""
        if record.carrier == WHATSAPP:
            if self.whatsapp_carrier is None:
                raise CarrierError("WhatsApp calling is not set up in this process")
            return await self.whatsapp_carrier.place_call(
                to=record.to_number,
                from_=record.from_number,
                agent_id=record.agent_id or "",
                call_id=record.id,
                context=record.context,
            )
        kwargs: dict[str, Any] = {}
        if self.carrier is self.simulated:
            # call_context.simulation scripts the simulated callee (outcome, lines).
            sim = record.context.get("simulation")
            if isinstance(sim, dict):
                fields = {k: v for k, v in sim.items() if k in ("outcome", "lines", "ring_s")}
                outcomes = sim.get("outcomes")
                if isinstance(outcomes, list) and outcomes:
                    # One outcome per attempt (campaign retries): busy, then answer, ...
                    attempt = int(record.context.get("attempt", 1))
                    fields["outcome"] = outcomes[min(attempt, len(outcomes)) - 1]
                kwargs["contact"] = SimulatedContact(**fields)
        return await self.carrier.place_call(
            to=record.to_number,
            from_=record.from_number,
            agent_id=record.agent_id or "",
            call_id=record.id,
            context=record.context,
            **kwargs,
        )

    async def hang_up(self, call_id: str, reason: str = "api_hangup") -> None:
        if await self.hang_up_local(call_id, reason):
            return
        record = await self.store.get(call_id)
        bus = getattr(self, "commands", None)
        if bus is not None and record is not None and record.status == CallStatus.IN_PROGRESS:
            # Connected, but not here: the process carrying it hangs it up.
            await bus.publish({"type": "hangup", "call_id": call_id, "reason": reason})
            return
        # Not connected here yet (queued or ringing): stop the carrier from connecting it.
        whatsapp_cancel = getattr(self.whatsapp_carrier, "cancel", None)
        if whatsapp_cancel is not None and await whatsapp_cancel(call_id):
            await self.store.set_status(call_id, CallStatus.CANCELLED, reason=reason)
            return
        cancel = getattr(self.carrier, "cancel", None)
        if cancel is not None:
            await cancel(call_id)
        await self.store.set_status(call_id, CallStatus.CANCELLED, reason=reason)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before reading them whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.limit} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None,
    engine: VoiceEngine | None = None,
    *,
    store: CallStore | None = None,
    agents: AgentDirectory | None = None,
    carrier_settings: CarrierSettings | None = None,
) -> FastAPI:
    settings = ServerSettings.from_settings(
        settings or (engine.settings if engine else ServerSettings())
    )
    engine = engine or VoiceEngine(settings)
    db_engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(db_engine)
    sql_agents = SqlAgentDirectory(sessions)
    sql_store = SqlCallStore(sessions)
    store = store or sql_store
    agents = agents or sql_agents
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
    services = Voxline(
        settings,
        engine,
        store,
        agents,
        phone,
        carrier,
        simulated,
        settings_default_from=carrier_settings.twilio_from_number,
    )
    services.set_listening(settings.host, settings.port)
    realtime = build_realtime(settings, engine, store, agents)
    dispatcher = CampaignDispatcher(
        sessions,
        services,
        tick_s=settings.campaign_tick_s,
        lease_s=settings.campaign_lease_s,
        org_max_concurrent=settings.org_max_concurrent_calls,
    )
    sql_store.status_hooks.append(on_call_status)
    sql_store.status_listeners.append(lambda _record: dispatcher.wake())
    postcall = PostCall(
        settings,
        sessions,
        engine,
        calls_in_progress=lambda: len(phone.active),
        public_base_url=lambda: settings.public_url or http_base(services.simulated.media_url),
    )
    sql_store.status_hooks.append(postcall.on_status)  # outbox rows commit with the status
    sql_store.status_listeners.append(postcall.on_status_committed)
    live = LiveHub(  # WS /api/v1/live: status events from the store, talk from the gateways
        sessions,
        redis_url=redis_url_from(settings.redis_url),
        prefix=settings.live_channel_prefix,
        queue_size=settings.live_queue_size,
        campaign_changed=lambda: dispatcher.changed,
    )
    sql_store.status_hooks.append(live.status_hook)
    sql_store.status_listeners.append(live.on_call_status)
    sql_store.created_listeners.append(live.on_call_created)
    phone.observers.append(live.on_call_event)
    realtime.webrtc.observers.append(live.on_call_event)

    redis_url = redis_url_from(settings.redis_url)
    commands = (
        CommandBus(redis_url, settings.live_channel_prefix, services.on_command)
        if redis_url
        else None
    )
    services.commands = commands
    lifecycle = Lifecycle(services, dispatcher, sessions, redis_url=redis_url)
    if "media" not in settings.roles:
        phone.accepting = False
        realtime.webrtc.accepting = False
    if "dispatcher" not in settings.roles:
        dispatcher.accepting = False

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.resolved_database_url)
        boot: Bootstrap = await ensure_defaults(sessions, settings.data_dir)
        app.state.bootstrap = boot
        sql_store.default_org_id = boot.org_id
        if sql_agents.default_agent_id is None:
            sql_agents.default_agent_id = boot.agent_id
        await engine.start()  # a no-op when the caller already started it
        simulated.tts = engine.tts
        log.info("engine ready: %s", engine.load_times_ms)
        monitor = heartbeat.HeartbeatMonitor(
            sessions,
            heartbeat.build_checks(app.state, sessions),
            interval_s=settings.heartbeat_interval_s,
            cache_s=settings.heartbeat_cache_s,
        )
        app.state.heartbeat = monitor
        roles = set(settings.roles)
        if "api" in roles:
            monitor.start()
        if "dispatcher" in roles:
            dispatcher.start()
        if "delivery" in roles:
            postcall.start()
        await live.start()
        if commands is not None:
            await commands.start()
        try:
            yield
        finally:
            if commands is not None:
                await commands.stop()
            await live.stop()
            await postcall.stop()
            await dispatcher.stop()
            await monitor.stop()
            await realtime.aclose()  # every WebRTC peer closed, its record finalized
            await phone.hangup_all("server_shutdown")
            await simulated.aclose()
            if carrier is not simulated:
                await carrier.aclose()
            with contextlib.suppress(Exception):
                await db_engine.dispose()

    app = FastAPI(
        title="voxline",
        version="0.1.0",
        lifespan=lifespan,
        description="Self-hosted real-time voice agents. Authenticate with "
        "`Authorization: Bearer <API key>` (create one with `voxline keys create`).",
    )
    app.state.voxline = services
    app.state.db_sessions = sessions
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.state.live = live
    app.state.lifecycle = lifecycle
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.include_router(build_router(phone, settings.public_url))
    app.include_router(agent_routes.router)
    app.include_router(call_routes.router)
    app.include_router(number_routes.router)
    app.include_router(bulk_call_routes.router)
    app.include_router(heartbeat.router)
    app.include_router(live_routes.router)
    app.include_router(dashboard_routes.router)
    realtime.install(app, services)
    postcall.mount(app)

    @app.get("/readyz", tags=["service"])
    async def readyz() -> JSONResponse:
        """Ready for new work: database (and Redis) answer, models loaded, not draining.
        A load balancer should route only to ready processes."""
        ok, checks = await lifecycle.readiness()
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok" if engine.stt is not None else "starting",
            "active_calls": len(phone.active),
            "carrier": carrier.name,
        }

    return app
