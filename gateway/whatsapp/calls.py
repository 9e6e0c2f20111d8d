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
from typing import Any

from gateway.calls import CallRecord, Direction, new_call_id
from gateway.webrtc.sdp import SdpError
from gateway.whatsapp.carrier import WhatsAppCarrier
from gateway.whatsapp.graph import GraphError
from gateway.whatsapp.line import CARRIER, WhatsAppLine
from gateway.whatsapp.webhook import CallConnect, CallEvent, CallStatusUpdate, CallTerminate
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

__all__ = ["CARRIER", "WhatsAppCalls"]


class WhatsAppCalls:
    """The webhook side: answers inbound calls, hands the events of calls we placed to
    ``outbound`` (the carrier that placed them)."""

    def __init__(
        self,
        line: WhatsAppLine,
        outbound: WhatsAppCarrier | None = None,
    ) -> None:
        self.line = line
        self.outbound = outbound
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def calls(self) -> dict[str, str]:
        """WhatsApp call id -> our call id, for the calls on the line."""
        return self.line.calls

    def handle(self, events: list[CallEvent]) -> None:
        """Act on parsed webhook events without holding up the webhook's answer
        (WhatsApp retries slow webhooks; answering takes an ICE gathering)."""
        for event in events:
            if isinstance(event, CallConnect) and event.sdp_type == "offer":
                if not self.line.claim(event.call_id):
                    log.info("whatsapp call %s: duplicate connect ignored", event.call_id)
                    continue
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
        agents, graph = self.line.agents, self.line.graph
        agent_id = await agents.for_number(event.to_number) or agents.default_agent_id
        agent = await agents.get(agent_id) if agent_id else None
        if agent is None or graph is None:
            why = "no agent answers this number" if agent is None else "no Graph API configured"
            log.warning("whatsapp call %s: rejected: %s", event.call_id, why)
            if graph is not None:
                await self.line.quietly(graph.reject(event.call_id))
            return
        if why := await self.line.webrtc.admission.refuse(agent_id):
            log.warning("whatsapp call %s: rejected: %s", event.call_id, why)
            await self.line.quietly(graph.reject(event.call_id))
            return
        call_id = new_call_id()

        async def make_record() -> CallRecord:
            return await self.line.store.create(
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
            call, answer = await self.line.webrtc.answer(
                event.sdp, agent=agent, make_record=make_record, on_end=self.line.on_end
            )
        except SdpError as exc:
            log.warning("whatsapp call %s: unusable offer: %s", event.call_id, exc)
            await self.line.quietly(graph.reject(event.call_id))
            return
        call.carrier_call_id = event.call_id
        self.line.connect(event.call_id, call_id)
        try:
            # pre_accept first: WhatsApp connects media before the call is "answered",
            # so the first words of the greeting are not clipped.
            await graph.pre_accept(event.call_id, answer)
            await graph.accept(event.call_id, answer)
        except GraphError as exc:
            call.end(CallEnd(EndReason.CARRIER_FAILED, f"{CARRIER}:{exc}"))

    async def _terminated_by_whatsapp(self, event: CallTerminate) -> None:
        call = self.line.webrtc.active.get(self.line.terminated(event.call_id) or "")
        if call is not None:
            call.end_with(CallEnd(EndReason.CALLER_HANGUP, "whatsapp terminate"))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
