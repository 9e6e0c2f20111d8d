"""The outbound carrier interface: who dials a number and connects it to an agent.

A carrier places the call and reports its progress to the call store (through
its status callbacks or, for the simulated one, directly); the audio of an
answered call arrives at ``/media-stream`` like any inbound call.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.calls import CallStatus
from voice_core.end_reasons import CallEnd, EndReason


class CarrierError(Exception):
    """The carrier refused or could not place the call; the message says why."""


def carrier_reason(said: str) -> str:
    """The end reason of a call whose outcome the carrier reported: ``carrier:<said>``.
    A media stream that ends the call later replaces it (it knows why better)."""
    return str(CallEnd(EndReason.CARRIER, said))


class Carrier(Protocol):
    name: str

    async def place_call(
        self,
        *,
        to: str,
        from_: str,
        agent_id: str,
        call_id: str,
        context: dict[str, Any] | None = None,
    ) -> str:
        """Dial ``to`` for the call record ``call_id``; returns the carrier's call id."""
        ...

    async def cancel(self, call_id: str) -> bool:
        """Stop a call this carrier is placing (queued or ringing; our hang-up before the
        media stream connected). True if it stopped one; never raises for a call it
        does not know or can no longer stop. The caller records the cancelled status."""
        ...

    async def call_status(self, call_id: str) -> CallStatus | None:
        """The call's status as the carrier knows it now (asked, not remembered from its
        callbacks): what campaign orphan recovery checks before it dials anyone again.
        None if the carrier has no such call (it never reached the carrier). Raises
        ``CarrierError`` if the carrier cannot be asked: the caller then asks later."""
        ...

    async def aclose(self) -> None: ...
