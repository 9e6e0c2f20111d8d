"""WhatsApp calling, put together once: one line, the carrier on it, the webhook side on both.

Arrows point one way: ``WhatsAppCalls`` -> ``WhatsAppCarrier`` -> ``WhatsAppLine``
(and ``WhatsAppCalls`` -> ``WhatsAppLine``); nothing is tied up after construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.agents import AgentDirectory
from gateway.calls import CallStore
from gateway.webrtc.call import WebRtcGateway
from gateway.whatsapp.calls import WhatsAppCalls
from gateway.whatsapp.carrier import WhatsAppCarrier
from gateway.whatsapp.graph import GraphClient
from gateway.whatsapp.line import WhatsAppLine


@dataclass(frozen=True)
class WhatsApp:
    line: WhatsAppLine
    carrier: WhatsAppCarrier  # business-initiated calls (the ``Carrier`` for channel whatsapp)
    webhooks: WhatsAppCalls  # what the webhook routes hand their events to

    async def aclose(self) -> None:
        await self.carrier.aclose()  # unanswered calls: terminate, record failed
        await self.webhooks.aclose()


def build_whatsapp(
    *,
    webrtc: WebRtcGateway,
    store: CallStore,
    agents: AgentDirectory,
    graph: GraphClient | None,
    ring_timeout_s: float = 45.0,
) -> WhatsApp:
    line = WhatsAppLine(webrtc=webrtc, store=store, agents=agents, graph=graph)
    carrier = WhatsAppCarrier(line, ring_timeout_s=ring_timeout_s)
    return WhatsApp(line, carrier, WhatsAppCalls(line, outbound=carrier))
