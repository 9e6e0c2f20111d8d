"""WhatsApp calls over the WebRTC gateway.

A user calls the business: WhatsApp sends a ``connect`` webhook with an SDP
offer. We answer it (aiortc), POST ``pre_accept`` with the answer so media can
start setting up, then ``accept`` with the same answer; the conversation runs
like any WebRTC call; on our hang-up we POST ``terminate``. A ``terminate``
webhook ends the call on our side without echoing a terminate back.

Webhooks are delivered at least once: a ``connect`` for a WhatsApp call id we
already handle is ignored, so a retry never answers the same call twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.agents import AgentDirectory
from gateway.calls import CallRecord, CallStatus, CallStore, Direction, new_call_id
from gateway.webrtc.call import WebRtcCall, WebRtcGateway
from gateway.webrtc.sdp import SdpError
from gateway.whatsapp.graph import GraphClient, GraphError
from gateway.whatsapp.webhook import CallConnect, CallEvent, CallStatusUpdate, CallTerminate

if TYPE_CHECKING:
    from gateway.whatsapp.carrier import WhatsAppCarrier

log = logging.getLogger(__name__)

CARRIER = "whatsapp"


@dataclass
class WhatsAppCalls:
    webrtc: WebRtcGateway
    store: CallStore
    agents: AgentDirectory
    graph: GraphClient | None
    # Business-initiated calls (gateway.whatsapp.carrier.WhatsAppCarrier): it gets the
    # answers, statuses and early terminates of the calls it placed.
    outbound: WhatsAppCarrier | None = None
    # WhatsApp call id -> our call id, for terminate webhooks and dedup.
    calls: dict[str, str] = field(default_factory=dict)
    _terminated: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def handle(self, events: list[CallEvent]) -> None:
        """Act on parsed webhook events without holding up the webhook's answer
        (WhatsApp retries slow webhooks; answering takes an ICE gathering)."""
        for event in events:
            if isinstance(event, CallConnect) and event.sdp_type == "offer":
                if event.call_id in self.calls:
                    log.info("whatsapp call %s: duplicate connect ignored", event.call_id)
                    continue
                self.calls[event.call_id] = ""  # claimed, answer in progress
                self._spawn(self._answer(event))
            elif isinstance(event, CallTerminate):
                if self.outbound is not None and self.outbound.owns(event.call_id):
                    self.outbound.spawn(self.outbound.on_terminate(event))  # never answered
                else:
                    self._spawn(self._terminated_by_whatsapp(event))
            elif isinstance(event, CallConnect):  # an answer to our offer
                if self.outbound is not None:
                    self.outbound.spawn(self.outbound.on_answer(event))
                else:
                    log.warning(
                        "whatsapp call %s: SDP answer for a call we did not place", event.call_id
                    )
            elif isinstance(event, CallStatusUpdate):
                if self.outbound is not None:
                    self.outbound.spawn(self.outbound.on_status(event))
                else:
                    log.warning(
                        "whatsapp call %s: status %s for a call we did not place",
                        event.call_id,
                        event.status,
                    )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, event: CallConnect) -> None:
        try:
            await self._answer_inner(event)
        except Exception:
            log.exception("whatsapp call %s: answering failed", event.call_id)

    async def _answer_inner(self, event: CallConnect) -> None:
        agent_id = await self.agents.for_number(event.to_number) or self.agents.default_agent_id
        agent = await self.agents.get(agent_id) if agent_id else None
        if agent is None or self.graph is None:
            why = "no agent answers this number" if agent is None else "no Graph API configured"
            log.warning("whatsapp call %s: rejected: %s", event.call_id, why)
            if self.graph is not None:
                await self._quietly(self.graph.reject(event.call_id))
            return
        call_id = new_call_id()

        async def make_record() -> CallRecord:
            return await self.store.create(
                CallRecord(
                    id=call_id,
                    agent_id=agent_id,
                    direction=Direction.INBOUND,
                    from_number=event.from_number,
                    to_number=event.to_number,
                    carrier=CARRIER,
                    carrier_call_id=event.call_id,
                )
            )

        try:
            call, answer = await self.webrtc.answer(
                event.sdp, agent=agent, make_record=make_record, on_end=self._on_end
            )
        except SdpError as exc:
            log.warning("whatsapp call %s: unusable offer: %s", event.call_id, exc)
            await self._quietly(self.graph.reject(event.call_id))
            return
        call.carrier_call_id = event.call_id
        self.calls[event.call_id] = call.call_id
        try:
            # pre_accept first: WhatsApp connects media before the call is "answered",
            # so the first words of the greeting are not clipped.
            await self.graph.pre_accept(event.call_id, answer)
            await self.graph.accept(event.call_id, answer)
        except GraphError as exc:
            call.end(f"whatsapp:{exc}", CallStatus.FAILED)

    async def _terminated_by_whatsapp(self, event: CallTerminate) -> None:
        self._terminated.add(event.call_id)
        call_id = self.calls.get(event.call_id)
        call = self.webrtc.active.get(call_id or "")
        if call is not None:
            call.end("caller_hangup (whatsapp terminate)", CallStatus.COMPLETED)

    async def _on_end(self, call: WebRtcCall) -> None:
        wacid = call.carrier_call_id
        if not wacid or self.graph is None:
            return
        self.calls.pop(wacid, None)
        if wacid in self._terminated:
            self._terminated.discard(wacid)
            return  # WhatsApp ended it; nothing to tell
        await self._quietly(self.graph.terminate(wacid))

    async def _quietly(self, action: Any) -> None:
        try:
            await action
        except GraphError as exc:
            log.warning("whatsapp: %s", exc)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
