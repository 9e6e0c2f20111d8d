"""The outbound carrier interface: who dials a number and connects it to an agent.

A carrier places the call and reports its progress to the call store (through
its status callbacks or, for the simulated one, directly); the audio of an
answered call arrives at ``/media-stream`` like any inbound call.
"""

from __future__ import annotations

from typing import Any, Protocol


class CarrierError(Exception):
    """The carrier refused or could not place the call; the message says why."""


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

    async def aclose(self) -> None: ...
