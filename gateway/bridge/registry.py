"""The calls this process carries, across every transport.

One ``CallRegistry`` per process, shared by every transport gateway: the
control plane counts calls in progress, hangs one up by id, and drains them
all at shutdown without knowing which transport carries which. Bridges add
themselves once their call has an id and remove themselves when it is over.

``process_id`` names this process in the call records it carries (their owner): the
control plane beats a heartbeat under it, and a process that stops beating has its
calls finalized by another (api.processes).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import TYPE_CHECKING, Protocol

from voice_core.end_reasons import CallEnd, EndReason

if TYPE_CHECKING:
    from gateway.transfer import CarrierActions


class LiveCall(Protocol):
    call_id: str | None
    transport: str  # "phone", "webrtc", ...

    def end_with(self, reason: CallEnd | EndReason | str) -> None:
        """End the call now (the first reason wins); returns at once."""
        ...

    async def hangup(self, reason: CallEnd | EndReason | str) -> None:
        """End the call and wait (bounded) until its record is final."""
        ...


def new_process_id() -> str:
    """Unique per process start, readable in a call record: host, pid, a random part."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class CallRegistry:
    def __init__(
        self, process_id: str | None = None, actions: CarrierActions | None = None
    ) -> None:
        self.process_id = process_id or new_process_id()
        self._calls: dict[str, LiveCall] = {}
        # The carriers' transfer and DTMF actions, for the calls' own transfer_call tool
        # (set once the process knows its carriers; None: calls cannot be transferred).
        self.actions = actions

    def add(self, call: LiveCall) -> None:
        assert call.call_id is not None
        self._calls[call.call_id] = call

    def remove(self, call: LiveCall) -> None:
        # Only this call's entry: a later stream for the same call id keeps its own.
        if call.call_id is not None and self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def count(self, transport: str | None = None) -> int:
        return len(self.of(transport)) if transport else len(self._calls)

    def of(self, transport: str | None) -> dict[str, LiveCall]:
        """A snapshot of the calls one transport carries (all of them for None)."""
        return {k: c for k, c in self._calls.items() if transport in (None, c.transport)}

    async def hangup(self, call_id: str, reason: CallEnd | EndReason | str) -> bool:
        """Hang up a call this process carries; False if it carries no such call."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        await call.hangup(reason)
        return True

    async def hangup_all(
        self, reason: CallEnd | EndReason | str, transport: str | None = None
    ) -> None:
        """End every call (of one transport) at once and wait for their records."""
        calls = list(self.of(transport).values())
        await asyncio.gather(*(c.hangup(reason) for c in calls), return_exceptions=True)
