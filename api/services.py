"""The process's shared services, every one a declared field, built once by ``api.app``.

Routes reach them as ``request.app.state.voxline``; the campaign dispatcher, the
lifecycle and the heartbeat get the object itself. Nothing is attached later: a field
that a process may lack (the command bus, only with Redis) is typed ``X | None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from api.calls.commands import CommandBus, Handler
from api.settings import ServerSettings
from gateway.agents import AgentDirectory
from gateway.bridge import CallRegistry
from gateway.calls import CallRecord, CallStatus, CallStore
from gateway.carriers import Carrier
from gateway.simulated.carrier import SimulatedCarrier, SimulatedContact
from gateway.twilio.phone_call import PhoneGateway
from gateway.twilio.routes import MEDIA_STREAM_PATH, websocket_base
from gateway.webrtc.call import WebRtcGateway
from gateway.whatsapp.calls import CARRIER as WHATSAPP
from voice_core.config import LLMConfig
from voice_core.engine import VoiceEngine


@dataclass
class Voxline:
    """The process's shared services."""

    settings: ServerSettings
    engine: VoiceEngine
    store: CallStore
    agents: AgentDirectory
    calls: CallRegistry  # the calls this process carries, shared by phone and webrtc
    phone: PhoneGateway  # phone calls over the media stream
    webrtc: WebRtcGateway  # browser and WhatsApp calls
    carrier: Carrier  # dials outbound phone calls: the simulated one or Twilio
    simulated: SimulatedCarrier  # always there: tests, demo and test calls use it
    whatsapp_carrier: Carrier  # business-initiated WhatsApp calls (carrier "whatsapp")
    commands: CommandBus | None = None  # with Redis: reach calls other processes carry
    settings_default_from: str | None = None
    default_llm_config: LLMConfig = field(default_factory=LLMConfig)

    def set_listening(self, host: str, port: int) -> None:
        """Tell the simulated carrier where our media stream is once the port is bound."""
        if self.settings.public_url:
            self.simulated.media_url = websocket_base(self.settings.public_url) + MEDIA_STREAM_PATH
        else:
            self.simulated.media_url = f"ws://{_url_host(host)}:{port}{MEDIA_STREAM_PATH}"

    async def hang_up_local(self, call_id: str, reason: str) -> bool:
        """Hang up a call this process carries; False if it carries no such call."""
        return await self.calls.hangup(call_id, reason)

    async def place_call(self, record: CallRecord) -> str:
        """Dial an outbound call whose record already exists (a record whose carrier is
        "whatsapp", from a dispatch with channel "whatsapp", is a WhatsApp call)."""
        if record.carrier == WHATSAPP:
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
        bus = self.commands
        if bus is not None and record is not None and record.status == CallStatus.IN_PROGRESS:
            # Connected, but not here: the process carrying it hangs it up.
            await bus.publish({"type": "hangup", "call_id": call_id, "reason": reason})
            return
        # Not connected here yet (queued or ringing): stop the carrier from connecting it.
        # A WhatsApp call rings on the WhatsApp carrier; any other on the phone carrier.
        if not await self.whatsapp_carrier.cancel(call_id):
            await self.carrier.cancel(call_id)
        await self.store.set_status(call_id, CallStatus.CANCELLED, reason=reason)


class VoxlineApp(FastAPI):
    """The control plane's app, its services declared: whoever serves it can tell them
    where it listens (``api.server.BackgroundServer``)."""

    def __init__(self, services: Voxline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.state.voxline = services  # what routes and tests read


def command_handler(calls: CallRegistry) -> Handler:
    """What this process does with a command another process published: it needs only
    the calls it carries, so the bus can be built before the services that publish."""

    async def handle(command: dict[str, Any]) -> None:
        if command.get("type") == "hangup" and command.get("call_id"):
            await calls.hangup(str(command["call_id"]), str(command.get("reason", "")))

    return handle


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
