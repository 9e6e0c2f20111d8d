"""The FastAPI application: builds the services, includes the routers, runs the lifespan.

``create_app`` builds everything a call needs once: the engine (models load once per
process, in the lifespan), the database (migrated to the latest schema in the
lifespan), the call store, the agent directory, the gateways and the outbound
carriers. They are ``api.services.Voxline``'s fields, reachable as
``app.state.voxline`` for routes and the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from api import heartbeat
from api.agents import phone_numbers as number_routes
from api.agents import routes as agent_routes
from api.agents.directory import SqlAgentDirectory
from api.agents.models import Agent
from api.bootstrap import Bootstrap, ensure_defaults
from api.calls import routes as call_routes
from api.calls.commands import CommandBus
from api.calls.store import SqlCallStore
from api.campaigns import routes as bulk_call_routes
from api.campaigns.dispatcher import CampaignDispatcher, on_call_status
from api.db.engine import create_engine, migrate, session_factory
from api.errors import error_responses
from api.idempotency.replay import IdempotencyRecorder, IdempotentReplay, replay_response
from api.keys import routes as key_routes
from api.keys.limits import OrgCallCap
from api.lifecycle import Lifecycle
from api.live import dashboard as dashboard_routes
from api.live import routes as live_routes
from api.live.feed import LiveHub, redis_url_from
from api.metrics.collector import VoxlineMetrics
from api.metrics.routes import MetricsListener
from api.metrics.routes import build_router as metrics_router
from api.middleware import BodyLimit, SecurityHeaders
from api.postcall.service import PostCall, http_base
from api.processes.monitor import ProcessMonitor
from api.realtime.setup import build_realtime
from api.schemas import Readiness
from api.services import Voxline, VoxlineApp, command_handler
from api.settings import ServerSettings
from api.tools.fetch import EgressFetch
from gateway.agents import AgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import CallStore
from gateway.carrier_dialects import build_carrier_dialects
from gateway.carriers import Carrier
from gateway.nonce_ledger import RedisNonceLedger
from gateway.pbx import build_pbx
from gateway.simulated.carrier import SimulatedCarrier
from gateway.stream_tokens import stream_tokens
from gateway.transfer import CarrierActions
from gateway.twilio.carrier import TwilioCarrier
from gateway.twilio.phone_call import OrgResolver, PhoneGateway
from gateway.twilio.routes import build_router
from voice_core.engine import VoiceEngine

log = logging.getLogger(__name__)

__all__ = ["Voxline", "create_app"]  # Voxline: tests still import it from here


def create_app(
    settings: ServerSettings | None = None,
    engine: VoiceEngine | None = None,
    *,
    store: CallStore | None = None,
    agents: AgentDirectory | None = None,
) -> VoxlineApp:
    """The whole control plane. ``engine`` (already started or not) is shared when given,
    as tests and benchmarks do to load the models once; its settings are then the
    engine layer of the default ``settings``."""
    if settings is None:
        settings = ServerSettings(engine=engine.settings) if engine else ServerSettings()
    engine = engine or VoiceEngine(settings.engine)
    # Agents' tools reach customer APIs only through the egress policy (api.tools.fetch).
    tool_fetch = EgressFetch(settings)
    engine.tool_fetch = tool_fetch
    transport = settings.transport
    db_engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(db_engine)
    sql_agents = SqlAgentDirectory(sessions)
    sql_store = SqlCallStore(sessions)
    store = store or sql_store
    agents = agents or sql_agents
    calls = CallRegistry()  # every call this process carries, whichever transport
    phone = PhoneGateway(
        engine=engine,
        store=store,
        agents=agents,
        recordings_dir=Path(settings.data_dir) / "recordings",
        calls=calls,
        tokens=stream_tokens(
            transport.stream_token_secret.get_secret_value()
            if transport.stream_token_secret
            else None,
            ttl_s=transport.stream_token_ttl_s,
        ),
        organization_of=_organization_of(sessions),
        media_burst_s=transport.media_burst_s,
    )
    simulated = SimulatedCarrier(store=store, tts=None, mint_token=phone.mint_token)
    carrier: Carrier = simulated
    if transport.carrier == "twilio":
        carrier = TwilioCarrier(transport, public_url=settings.public_url or "", store=store)
    dialects = build_carrier_dialects(  # Telnyx, Plivo, Vonage, Exotel: each off unless enabled
        transport,
        public_url=settings.public_url,
        engine=engine,
        store=store,
        agents=agents,
        recordings_dir=Path(settings.data_dir) / "recordings",
        calls=calls,
        observers=[],
        tokens=phone.tokens,
        organization_of=phone.organization_of,
    )
    carrier = dialects.carriers.get(transport.carrier, carrier)
    # Transfer and DTMF on live calls go to the carrier each call's record names.
    calls.actions = CarrierActions(store, [simulated, carrier, *dialects.carriers.values()])
    realtime = build_realtime(settings, engine, store, agents, calls, sessions=sessions)
    redis_url = redis_url_from(settings.redis_url)
    if redis_url:  # a stream token opens one stream in the whole fleet, not one per process
        phone.tokens.ledger = RedisNonceLedger(redis_url, settings.live_channel_prefix)
    commands = (
        CommandBus(
            redis_url,
            settings.live_channel_prefix,
            command_handler(calls),
        )
        if redis_url
        else None
    )
    services = Voxline(
        settings=settings,
        engine=engine,
        store=store,
        agents=agents,
        calls=calls,
        phone=phone,
        webrtc=realtime.webrtc,
        carrier=carrier,
        simulated=simulated,
        whatsapp_carrier=realtime.whatsapp.carrier,
        commands=commands,
        settings_default_from=transport.twilio_from_number,
    )
    services.set_listening(settings.host, settings.port)
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
        calls_in_progress=lambda: len(calls),
        public_base_url=lambda: settings.public_url or http_base(services.simulated.media_url),
    )
    sql_store.status_hooks.append(postcall.on_status)  # outbox rows commit with the status
    sql_store.status_listeners.append(postcall.on_status_committed)
    live = LiveHub(  # WS /api/v1/live: status events from the store, talk from the gateways
        sessions,
        redis_url=redis_url,
        prefix=settings.live_channel_prefix,
        queue_size=settings.live_queue_size,
        campaign_changed=lambda: dispatcher.changed,
    )
    sql_store.status_hooks.append(live.status_hook)
    sql_store.status_listeners.append(live.on_call_status)
    sql_store.created_listeners.append(live.on_call_created)
    phone.observers.append(live.on_call_event)
    realtime.webrtc.observers.append(live.on_call_event)
    metrics = VoxlineMetrics(  # GET /metrics, off unless the operator opens it
        engine=engine,
        calls=calls,
        sessions=sessions,
        analysis_errors=lambda: postcall.analysis.model_errors,
    )
    postcall.analysis.on_analysed = metrics.analysed
    phone.observers.append(metrics.observe)
    realtime.webrtc.observers.append(metrics.observe)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics_listener = (
        MetricsListener(metrics, settings.metrics_host, settings.metrics_port, metrics_token)
        if settings.metrics_port is not None
        else None
    )
    pbx = build_pbx(  # Asterisk / FreeSWITCH / jambonz, each off unless enabled
        transport,
        engine=engine,
        store=store,
        agents=agents,
        recordings_dir=Path(settings.data_dir) / "recordings",
        calls=calls,
        observers=[live.on_call_event, metrics.observe],
    )
    # Inbound calls on every channel count against the organization's cap (dispatches
    # are admitted by the API guard, against the same call table).
    admission = OrgCallCap(sessions, settings.org_max_concurrent_calls)
    for gw in (phone, realtime.webrtc, *pbx.all(), *dialects.gateways):
        gw.admission = admission
    for gw in dialects.gateways:
        gw.observers.append(live.on_call_event)
    lifecycle = Lifecycle(services, dispatcher, sessions, redis_url=redis_url)
    # This process's heartbeat, and the sweep that finalizes a dead process's calls.
    processes = ProcessMonitor(
        sessions,
        sql_store,
        calls.process_id,
        interval_s=settings.process_heartbeat_s,
        timeout_s=settings.process_timeout_s,
    )
    if "media" not in settings.roles:
        phone.accepting = False
        realtime.webrtc.accepting = False
        pbx.set_accepting(False)
        dialects.set_accepting(False)
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
            heartbeat.build_checks(services, sessions),
            interval_s=settings.heartbeat_interval_s,
            cache_s=settings.heartbeat_cache_s,
        )
        app.state.heartbeat = monitor
        await processes.start()  # before any call: registered, predecessors swept
        roles = set(settings.roles)
        if "api" in roles:
            monitor.start()
        if "dispatcher" in roles:
            dispatcher.start()
        if "delivery" in roles:
            postcall.start()
        await live.start()
        if metrics_listener is not None:
            await metrics_listener.start()
        if "media" in roles:
            await pbx.start()
        if commands is not None:
            await commands.start()
        try:
            yield
        finally:
            if commands is not None:
                await commands.stop()
            await live.stop()
            if metrics_listener is not None:
                await metrics_listener.stop()
            await postcall.stop()
            await dispatcher.stop()
            await monitor.stop()
            await realtime.aclose()  # every WebRTC peer closed, its record finalized
            await phone.hangup_all("server_shutdown")
            await pbx.stop("server_shutdown")
            await calls.hangup_all("server_shutdown")  # PBX WebSocket calls included
            await processes.stop()  # every call here is final: nothing left to sweep
            await simulated.aclose()
            if carrier is not simulated:
                await carrier.aclose()
            await dialects.aclose()
            await tool_fetch.aclose()
            if isinstance(phone.tokens.ledger, RedisNonceLedger):
                await phone.tokens.ledger.aclose()
            with contextlib.suppress(Exception):
                await db_engine.dispose()

    app = VoxlineApp(
        services,
        title="voxline",
        version="0.1.0",
        lifespan=lifespan,
        description="Self-hosted real-time voice agents. Authenticate with "
        "`Authorization: Bearer <API key>` (create one with `voxline keys create`).",
    )
    app.state.db_sessions = sessions
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.state.live = live
    app.state.metrics = metrics
    app.state.metrics_listener = metrics_listener
    app.state.lifecycle = lifecycle
    app.state.processes = processes
    app.add_middleware(IdempotencyRecorder)  # stores a keyed POST's response before sending it
    app.add_exception_handler(IdempotentReplay, replay_response)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # CSP, nosniff, Referrer-Policy on HTML pages
    app.include_router(  # carrier webhooks: signature 403, form errors 4xx
        build_router(phone, settings.public_url, transport),
        responses=error_responses(400, 403, 404, 409, 413, 415),
    )
    app.include_router(agent_routes.router)
    app.include_router(call_routes.router)
    app.include_router(number_routes.router)
    app.include_router(bulk_call_routes.router)
    app.include_router(heartbeat.router)
    app.include_router(live_routes.router)
    app.include_router(key_routes.router)
    app.include_router(dashboard_routes.router)
    for router in pbx.routers:
        app.include_router(router)
    for router in dialects.routers:  # carrier dialects: webhooks and media streams
        app.include_router(router)
    realtime.install(app)
    postcall.mount(app)
    app.include_router(metrics_router(metrics, metrics_token, open_without_token=False))

    @app.get(
        "/readyz",
        tags=["service"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "not ready: see checks"}},
    )
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


def _organization_of(sessions: async_sessionmaker) -> OrgResolver:
    """The organization an agent belongs to, for the stream tokens (None for an agent
    the database does not hold, such as an in-memory directory's)."""

    async def organization_of(agent_id: str) -> str | None:
        async with sessions() as db:
            return (
                await db.execute(select(Agent.org_id).where(Agent.id == agent_id))
            ).scalar_one_or_none()

    return organization_of
