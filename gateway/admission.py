"""Whether a new inbound call may start: the operator's cap on calls per organization.

Outbound calls are admitted when they are dispatched (the API holds a slot while it
writes the record). Inbound calls arrive on every channel (a carrier webhook, a PBX
socket, a browser offer, a WhatsApp connect) and are admitted here, before a record
is written or an engine session started, so a tenant's cap holds across channels.
"""

from __future__ import annotations

from typing import Protocol


class CallAdmission(Protocol):
    async def refuse(self, agent_id: str | None) -> str | None:
        """Why a new inbound call to ``agent_id`` may not start now; None if it may."""
        ...


class AdmitAll:
    """No cap: the gateway used on its own, without a control plane."""

    async def refuse(self, agent_id: str | None) -> str | None:
        return None
