"""The built-in carrier: places calls to simulated callees, no telephone network needed.

A ``SimulatedContact`` says what happens when its number is dialled: it answers
and speaks its lines (a ``SimulatedCallee`` on our real ``/media-stream``), an
answering machine answers (outcome ``machine``: a greeting, a beep, then it
records), or the call ends busy, unanswered or failed. Progress goes to the call store in
the order a carrier's status callbacks would report it:
queued -> ringing -> in_progress -> completed (or busy / no_answer / failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.calls import CallStatus, CallStore
from gateway.carriers import CarrierError, carrier_reason
from gateway.simulated.callee import (
    AnsweringMachine,
    CalleeLine,
    CalleeReport,
    SimulatedCallee,
)
from voice_core.tts.base import TextToSpeech

log = logging.getLogger(__name__)


Outcome = Literal["answer", "machine", "busy", "no-answer", "failed"]
# (call_id, agent_id) -> a stream token for that call: what a carrier gets in the TwiML.
TokenMinter = Callable[[str, str], Awaitable[str]]

DEFAULT_LINES = (
    "Hi, I would like to book a teeth cleaning next week, please.",
    "Tuesday morning would be great. Thank you, goodbye.",
)


@dataclass
class SimulatedContact:
    outcome: Outcome = "answer"
    lines: list[str | CalleeLine] = field(default_factory=lambda: list(DEFAULT_LINES))
    ring_s: float = 0.5  # how long it rings before the outcome
    barge_in_after_s: float = 1.0
    # Outcome "machine": this one (default: a stock greeting and beep). Lines other than
    # the default ones are its greeting.
    machine: AnsweringMachine | None = None
    speaks_first: bool = False  # a person who says "Hello?" on answer, before the agent

    def answering_machine(self) -> AnsweringMachine | None:
        if self.outcome != "machine":
            return None
        if self.machine is not None:
            return self.machine
        if self.lines != list(DEFAULT_LINES):
            text = " ".join(x if isinstance(x, str) else x.text for x in self.lines)
            return AnsweringMachine(greeting=text)
        return AnsweringMachine()


@dataclass
class SimulatedCall:
    carrier_call_id: str
    call_id: str
    to: str
    outcome: Outcome
    status: CallStatus = CallStatus.QUEUED  # what this carrier would answer if asked
    report: CalleeReport | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None
    # What the agent's side asked of the line: where the caller was transferred to, and
    # the digits played to the callee (an IVR would act on them).
    transfers: list[str] = field(default_factory=list)
    dtmf_received: list[str] = field(default_factory=list)


class SimulatedCarrier:
    name = "simulated"

    def __init__(
        self,
        *,
        store: CallStore,
        tts: TextToSpeech | None,
        media_url: str | None = None,
        contacts: dict[str, SimulatedContact] | None = None,
        no_answer_after_s: float = 1.0,
        callee_options: dict[str, Any] | None = None,
        mint_token: TokenMinter | None = None,
    ) -> None:
        """``mint_token`` is the server's (``PhoneGateway.mint_token``): the callee opens
        the media stream with a token as a real carrier does."""
        self.store = store
        self.mint_token = mint_token
        self.tts = tts
        self.media_url = media_url  # set once the server is listening
        self.contacts = dict(contacts or {})
        self.no_answer_after_s = no_answer_after_s
        self.callee_options = dict(callee_options or {})
        # Finished calls are kept for ``wait()`` (their reports hold the audio the callee
        # heard, megabytes each): only the most recent ones, or a campaign of thousands
        # of simulated calls would keep every one of them in memory.
        self.calls: OrderedDict[str, SimulatedCall] = OrderedDict()
        self.keep_finished = 32

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
        contact: SimulatedContact | None = None,
    ) -> str:
        contact = contact or self.contacts.get(to) or SimulatedContact()
        sid = "SM" + uuid.uuid4().hex
        call = SimulatedCall(sid, call_id, to, contact.outcome)
        self.calls[sid] = call
        self._forget_old()
        await self.store.update(call_id, carrier=self.name, carrier_call_id=sid)
        await self.store.set_status(call_id, CallStatus.QUEUED)
        call.task = asyncio.create_task(
            self._ring(call, contact, agent_id), name=f"simulated-call:{call_id}"
        )
        return sid

    async def wait(self, carrier_call_id: str, timeout: float | None = None) -> SimulatedCall:
        call = self.calls[carrier_call_id]
        if call.task is not None:
            await asyncio.wait_for(asyncio.shield(call.task), timeout)
        return call

    async def _ring(self, call: SimulatedCall, contact: SimulatedContact, agent_id: str) -> None:
        call_id = call.call_id
        try:
            if contact.outcome == "failed":
                # An unreachable number fails before it ever rings.
                await self._report(call, CallStatus.FAILED, reason=carrier_reason("failed"))
                return
            await self._report(call, CallStatus.RINGING)
            await asyncio.sleep(contact.ring_s)
            if contact.outcome == "busy":
                await self._report(call, CallStatus.BUSY, reason=carrier_reason("busy"))
                return
            if contact.outcome == "no-answer":
                await asyncio.sleep(self.no_answer_after_s)
                await self._report(call, CallStatus.NO_ANSWER, reason=carrier_reason("no-answer"))
                return
            if not self.media_url:
                raise RuntimeError("SimulatedCarrier.media_url is not set (server not started?)")
            if self.mint_token is None:
                raise RuntimeError("SimulatedCarrier.mint_token is not set: no stream token")
            options: dict[str, Any] = {"barge_in_after_s": contact.barge_in_after_s}
            if contact.speaks_first:
                options["wait_for_greeting"] = False
            options.update(self.callee_options)
            # Minted on answer, as a carrier fetches its TwiML when the callee picks up.
            callee = SimulatedCallee(
                self.media_url,
                contact.lines,
                tts=self.tts,
                agent_id=agent_id,
                call_id=call_id,
                token=await self.mint_token(call_id, agent_id),
                machine=contact.answering_machine(),
                **options,
            )
            call.status = CallStatus.IN_PROGRESS  # answered (the media stream reports it)
            call.report = await callee.run()
            await self._report(call, CallStatus.COMPLETED, reason=carrier_reason("completed"))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._report(call, CallStatus.CANCELLED, reason=carrier_reason("cancelled"))
            raise
        except Exception as exc:
            call.error = f"{type(exc).__name__}: {exc}"
            log.warning("simulated call %s failed: %s", call_id, call.error)
            await self._report(call, CallStatus.FAILED, reason=carrier_reason(call.error))

    async def _report(
        self, call: SimulatedCall, status: CallStatus, *, reason: str | None = None
    ) -> None:
        """Progress to the store, as a status callback would; kept as this carrier's view."""
        call.status = status
        await self.store.set_status(call.call_id, status, reason=reason)

    def _forget_old(self) -> None:
        finished = [sid for sid, c in self.calls.items() if c.task is None or c.task.done()]
        for sid in finished[: max(0, len(finished) - self.keep_finished)]:
            del self.calls[sid]

    async def call_status(self, call_id: str) -> CallStatus | None:
        """This carrier's calls live in this process: one placed by a process that died
        died with it, so a call it does not know is one it is not placing (None)."""
        for call in reversed(self.calls.values()):
            if call.call_id == call_id:
                running = call.task is not None and not call.task.done()
                return call.status if running or call.status.final else CallStatus.FAILED
        return None

    def _live(self, call_id: str) -> SimulatedCall:
        for call in reversed(self.calls.values()):
            if call.call_id == call_id and call.status == CallStatus.IN_PROGRESS:
                return call
        raise CarrierError(f"simulated call {call_id} is not in progress")

    async def transfer(self, call_id: str, to: str) -> None:
        """Record the hand-over: a real carrier would now bridge the callee to ``to``."""
        self._live(call_id).transfers.append(to)
        log.info("simulated call %s transferred to %s", call_id, to)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Deliver the digits to the callee, as a carrier plays them into the line."""
        self._live(call_id).dtmf_received.append(digits)

    async def cancel(self, call_id: str) -> bool:
        """Stop ringing (or talking to) the callee of ``call_id``; it ends cancelled."""
        stopped = False
        for call in self.calls.values():
            if call.call_id == call_id and call.task is not None and not call.task.done():
                call.task.cancel()
                stopped = True
        return stopped

    async def aclose(self) -> None:
        for call in self.calls.values():
            if call.task is not None and not call.task.done():
                call.task.cancel()
        for call in self.calls.values():
            if call.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await call.task
