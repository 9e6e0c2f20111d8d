"""Business-initiated WhatsApp calls, behind the same ``Carrier`` interface as phone calls.

``place_call`` makes the SDP offer (aiortc, audio/Opus, candidates gathered),
POSTs ``connect`` with it to ``/{phone_number_id}/calls`` and keeps the call
pending under WhatsApp's call id. Then webhooks drive it:

- ``statuses[]`` RINGING -> ringing; ACCEPTED -> in_progress (WhatsApp sends it
  mostly for auditing, often after media is up; the peer connecting also moves the
  record to in_progress); REJECTED -> busy: the user was reached and declined,
  which is what a phone network reports for a declined call (486/603 -> Twilio's
  ``busy``), and it keeps campaign retries on ``busy`` meaningful. ``failed`` is
  kept for calls that could not be placed at all (Graph API refusal, bad SDP).
- ``calls[]`` ``connect`` with ``session.sdp_type: "answer"``: the answer is applied
  (setRemoteDescription) and the call runs like any WebRTC call; from then on
  it is one of the line's connected calls, so our hang-up POSTs ``terminate`` and
  a ``terminate`` webhook ends it without an echo.
- ``terminate`` before any answer: WhatsApp gave up ringing -> no_answer (failed
  if WhatsApp says FAILED).

No answer within ``ring_timeout_s``: we POST ``terminate`` and the call ends as
no_answer. Webhooks for call ids we never placed are logged and ignored (the
webhook still gets its 200: Meta retries anything else).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from gateway.agents import AgentDirectory
from gateway.calls import CallStatus, CallStore
from gateway.carriers import CarrierError
from gateway.webrtc.call import WebRtcCall, WebRtcGateway
from gateway.webrtc.sdp import SdpError
from gateway.whatsapp.graph import GraphError
from gateway.whatsapp.line import CARRIER, WhatsAppLine
from gateway.whatsapp.webhook import CallConnect, CallStatusUpdate, CallTerminate

log = logging.getLogger(__name__)


@dataclass
class _Ringing:
    call_id: str
    wacid: str
    call: WebRtcCall
    timer: asyncio.Task[None] | None = None


class WhatsAppCarrier:
    """Places business-initiated WhatsApp calls; the webhook side (``WhatsAppCalls``)
    hands it the webhooks that concern them (``owns`` / ``on_*``)."""

    name = CARRIER

    def __init__(self, line: WhatsAppLine, ring_timeout_s: float = 45.0) -> None:
        # Only the line is kept: nothing here points back at the webhook side.
        self.line = line
        self.ring_timeout_s = ring_timeout_s
        # WhatsApp call id -> a call we placed that has not been answered yet.
        self.ringing: dict[str, _Ringing] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def webrtc(self) -> WebRtcGateway:
        return self.line.webrtc

    @property
    def store(self) -> CallStore:
        return self.line.store

    @property
    def agents(self) -> AgentDirectory:
        return self.line.agents

    # ------------------------------------------------------------ Carrier

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
    ) -> str:
        graph = self.line.graph
        if graph is None:
            raise CarrierError(
                "WhatsApp calling is not configured: set VOXLINE_WHATSAPP_PHONE_NUMBER_ID "
                "and VOXLINE_WHATSAPP_ACCESS_TOKEN"
            )
        agent = await self.agents.get(agent_id)
        if agent is None:
            raise CarrierError(f"agent {agent_id!r} not found")
        try:
            call, offer = await self.webrtc.offer(
                agent=agent, context=context, on_end=self.line.on_end
            )
        except SdpError as exc:
            raise CarrierError(f"could not make an SDP offer: {exc}") from exc
        # WhatsApp ids are the number's digits (the Calling API's examples send no '+').
        wa_to = "".join(ch for ch in to if ch.isdigit())
        try:
            wacid = await graph.connect(wa_to, offer)
        except GraphError as exc:
            await self.webrtc.drop_pending(call)
            raise CarrierError(f"WhatsApp refused the call: {exc}") from exc
        call.carrier_call_id = wacid
        entry = _Ringing(call_id, wacid, call)
        self.ringing[wacid] = entry
        entry.timer = asyncio.create_task(self._ring_timeout(entry), name=f"{call_id}:ring")
        await self.store.update(call_id, carrier=CARRIER, carrier_call_id=wacid)
        log.info("call %s: WhatsApp call %s to %s placed", call_id, wacid, wa_to)
        return wacid

    async def cancel(self, call_id: str) -> bool:
        """Our hang-up before the user answered: tell WhatsApp, drop the peer."""
        entry = next((e for e in self.ringing.values() if e.call_id == call_id), None)
        if entry is None:
            return False
        self._forget(entry)
        await self.webrtc.drop_pending(entry.call)
        await self._terminate(entry.wacid)
        return True

    async def aclose(self) -> None:
        for entry in list(self.ringing.values()):
            self._forget(entry)
            await self.webrtc.drop_pending(entry.call)
            await self._terminate(entry.wacid)
            await self._quiet_status(entry.call_id, CallStatus.FAILED, "server_shutdown")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ webhooks

    def owns(self, wacid: str) -> bool:
        return wacid in self.ringing

    async def on_answer(self, event: CallConnect) -> None:
        entry = self.ringing.get(event.call_id)
        if entry is None:
            log.warning(
                "whatsapp call %s: SDP answer for a call we did not place (or that "
                "already ended); ignored",
                event.call_id,
            )
            return
        self._forget(entry)  # before any await: the ring timer must not end it now
        try:
            await self.webrtc.connect_answer(entry.call, event.sdp, entry.call_id)
        except SdpError as exc:
            log.warning("whatsapp call %s: unusable answer: %s", event.call_id, exc)
            await self._terminate(entry.wacid)
            await self._quiet_status(
                entry.call_id, CallStatus.FAILED, f"whatsapp:bad answer: {exc}"
            )
            return
        # Now an ordinary WhatsApp call: hang-ups and terminate webhooks go through the
        # line (its on_end POSTs terminate unless WhatsApp ended the call).
        self.line.connect(entry.wacid, entry.call_id)

    async def on_status(self, event: CallStatusUpdate) -> None:
        entry = self.ringing.get(event.call_id)
        call_id = entry.call_id if entry else self.line.calls.get(event.call_id)
        if not call_id:
            log.warning(
                "whatsapp call %s: status %s for a call we did not place; ignored",
                event.call_id,
                event.status,
            )
            return
        if event.status == "RINGING":
            await self._quiet_status(call_id, CallStatus.RINGING)
        elif event.status == "ACCEPTED":
            await self._quiet_status(call_id, CallStatus.IN_PROGRESS)
        elif event.status == "REJECTED":
            if entry is None:
                log.warning("whatsapp call %s: REJECTED after it was answered", event.call_id)
                return
            self._forget(entry)
            await self.webrtc.drop_pending(entry.call)
            await self._quiet_status(
                call_id, CallStatus.BUSY, "rejected: the WhatsApp user declined the call"
            )
        else:
            log.info("whatsapp call %s: status %s ignored", event.call_id, event.status)

    async def on_terminate(self, event: CallTerminate) -> None:
        """WhatsApp ended a call of ours that was never answered."""
        entry = self.ringing.get(event.call_id)
        if entry is None:
            return
        self._forget(entry)
        await self.webrtc.drop_pending(entry.call)
        said = event.status.upper()
        status = {"FAILED": CallStatus.FAILED, "REJECTED": CallStatus.BUSY}.get(
            said, CallStatus.NO_ANSWER
        )
        reason = f"whatsapp terminate before answer ({said or 'no status'})"
        await self._quiet_status(entry.call_id, status, reason)

    # ------------------------------------------------------------ internals

    async def _ring_timeout(self, entry: _Ringing) -> None:
        await asyncio.sleep(self.ring_timeout_s)
        if self.ringing.get(entry.wacid) is not entry:
            return  # answered, rejected or cancelled meanwhile
        entry.timer = None  # this task: _forget must not cancel it mid-cleanup
        self._forget(entry)
        log.info("call %s: no answer within %g s", entry.call_id, self.ring_timeout_s)
        await self.webrtc.drop_pending(entry.call)
        await self._terminate(entry.wacid)
        await self._quiet_status(
            entry.call_id,
            CallStatus.NO_ANSWER,
            f"no_answer: not answered within {self.ring_timeout_s:g} s",
        )

    def _forget(self, entry: _Ringing) -> None:
        self.ringing.pop(entry.wacid, None)
        if entry.timer is not None and entry.timer is not asyncio.current_task():
            entry.timer.cancel()
        entry.timer = None

    async def _terminate(self, wacid: str) -> None:
        graph = self.line.graph
        if graph is None:
            return
        try:
            await graph.terminate(wacid)
        except GraphError as exc:
            log.warning("whatsapp call %s: terminate failed: %s", wacid, exc)

    async def _quiet_status(
        self, call_id: str, status: CallStatus, reason: str | None = None
    ) -> None:
        try:
            await self.store.set_status(call_id, status, reason=reason)
        except Exception:
            log.exception("call %s: could not record status %s", call_id, status)

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await coro
            except Exception:
                log.exception("whatsapp: handling a webhook for a placed call failed")
