"""What every WhatsApp call on our number shares, inbound or outbound.

The WebRTC gateway that carries the media, the stores, the Graph API client,
and the connected calls: WhatsApp call id -> our call id, for terminate
webhooks, retried connects and status updates. ``WhatsAppCalls`` (the webhook
side, inbound calls) and ``WhatsAppCarrier`` (calls we place) are both built on
one ``WhatsAppLine``; neither knows the other's insides, and the line knows
neither of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from gateway.agents import AgentDirectory
from gateway.calls import CallStore
from gateway.webrtc.call import WebRtcCall, WebRtcGateway
from gateway.whatsapp.graph import GraphClient, GraphError

log = logging.getLogger(__name__)

CARRIER = "whatsapp"


@dataclass
class WhatsAppLine:
    webrtc: WebRtcGateway
    store: CallStore
    agents: AgentDirectory
    graph: GraphClient | None
    # WhatsApp call id -> our call id ("" while an answer is being made).
    calls: dict[str, str] = field(default_factory=dict)
    _terminated: set[str] = field(default_factory=set)

    def claim(self, wacid: str) -> bool:
        """Take a WhatsApp call id for answering; False if it is already ours (a retry)."""
        if wacid in self.calls:
            return False
        self.calls[wacid] = ""
        return True

    def connect(self, wacid: str, call_id: str) -> None:
        """``wacid`` now runs as our call ``call_id``: hang-ups and terminates apply to it."""
        self.calls[wacid] = call_id

    def terminated(self, wacid: str) -> str | None:
        """WhatsApp ended ``wacid``: our call id for it, and no terminate is echoed back."""
        self._terminated.add(wacid)
        return self.calls.get(wacid)

    async def on_end(self, call: WebRtcCall) -> None:
        """Every connected WhatsApp call's end hook: tell WhatsApp, unless it told us."""
        wacid = call.carrier_call_id
        if not wacid or self.graph is None:
            return
        self.calls.pop(wacid, None)
        if wacid in self._terminated:
            self._terminated.discard(wacid)
            return  # WhatsApp ended it; nothing to tell
        await self.quietly(self.graph.terminate(wacid))

    async def quietly(self, action: Awaitable[Any]) -> None:
        """A Graph API call whose failure is logged, not raised (the call ends anyway)."""
        try:
            await action
        except GraphError as exc:
            log.warning("whatsapp: %s", exc)
